using Latchkey.Features.Settings;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Latchkey.Features.Administration.Pages;

/// <summary>The settings that are safe to change while the server runs (<see cref="RuntimeSettings"/>).</summary>
public sealed partial class AdminSettingsModel(RuntimeSettings settings, ILogger<AdminSettingsModel> logger) : PageModel
{
    public IReadOnlyList<RuntimeSettingValue> Values { get; private set; } = [];

    public async Task OnGetAsync(CancellationToken cancellationToken) => await LoadAsync(cancellationToken);

    /// <summary>Sets one setting; a checkbox that is not ticked sends nothing, which means false.</summary>
    public async Task<IActionResult> OnPostSetAsync(string key, string? value, CancellationToken cancellationToken)
    {
        var definition = RuntimeSettings.All.FirstOrDefault(d => d.Key == key);
        if (definition?.Kind == RuntimeSettingKind.Boolean)
        {
            value = value == "true" ? "true" : "false";
        }
        var actor = AdminActor.Of(User);
        if (await settings.SetAsync(key, value, actor, cancellationToken) is { } problem)
        {
            ModelState.AddModelError("", problem);
            Response.StatusCode = StatusCodes.Status400BadRequest;
            await LoadAsync(cancellationToken);
            return Page();
        }
        LogChanged(logger, key, actor);
        TempData[AdminPaths.NoticeKey] = $"{definition!.Label}: saved. Every node uses it from now on.";
        return Redirect(AdminPaths.Settings);
    }

    public async Task<IActionResult> OnPostResetAsync(string key, CancellationToken cancellationToken)
    {
        await settings.ResetAsync(key, cancellationToken);
        var actor = AdminActor.Of(User);
        LogChanged(logger, key, actor);
        TempData[AdminPaths.NoticeKey] = "Back to the configured value.";
        return Redirect(AdminPaths.Settings);
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        Values = await settings.ListAsync(cancellationToken);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Run-time setting {Key} changed by {Actor}")]
    private static partial void LogChanged(ILogger logger, string key, string actor);
}

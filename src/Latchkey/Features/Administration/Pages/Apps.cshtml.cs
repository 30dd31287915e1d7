using Latchkey.Features.AuthorizationServer.Apps;
using Latchkey.Features.AuthorizationServer.Stores;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Latchkey.Features.Administration.Pages;

/// <summary>Every OAuth app, those that registered themselves first to review, with live token counts; disable or enable one.</summary>
public sealed partial class AdminAppsModel(AdminOverview overview, OAuthAppService apps, OAuthApplicationManager applications, ILogger<AdminAppsModel> logger) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public AppFilter Filter { get; set; }

    [BindProperty(SupportsGet = true, Name = "q")]
    public string? Search { get; set; }

    public IReadOnlyList<AdminAppRow> Apps { get; private set; } = [];

    public async Task OnGetAsync(CancellationToken cancellationToken) =>
        Apps = await overview.AppsAsync(Filter, Search, cancellationToken);

    public async Task<IActionResult> OnPostSetEnabledAsync(string clientId, bool enabled, CancellationToken cancellationToken)
    {
        var app = await applications.FindByClientIdAsync(clientId, cancellationToken);
        if (app is null)
        {
            TempData[AdminPaths.NoticeKey] = "That app no longer exists.";
        }
        else
        {
            await apps.SetEnabledAsync(app, enabled, cancellationToken);
            var actor = AdminActor.Of(User);
            LogAppChanged(logger, app.ClientId!, enabled ? "enabled" : "disabled", actor);
            TempData[AdminPaths.NoticeKey] = enabled
                ? $"{app.DisplayName} is enabled again."
                : $"{app.DisplayName} is disabled: its tokens stop working at once and it cannot start new sign-ins.";
        }
        return Redirect($"{AdminPaths.Apps}?filter={Filter}&q={Uri.EscapeDataString(Search ?? "")}");
    }

    public static string OriginText(AdminAppRow app) => app.Origin switch
    {
        AppOrigin.Account => app.OwnerEmail ?? "an account",
        AppOrigin.DynamicRegistration => "itself (dynamic registration)",
        _ => "itself (client metadata document)",
    };

    [LoggerMessage(Level = LogLevel.Information, Message = "OAuth app {ClientId} {Change} by {Actor}")]
    private static partial void LogAppChanged(ILogger logger, string clientId, string change, string actor);
}

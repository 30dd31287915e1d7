using Latchkey.Common;
using Latchkey.Features.AuthorizationServer.Apps;
using Latchkey.Features.AuthorizationServer.Stores;
using Latchkey.Features.Scopes;
using Latchkey.Features.Site;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Latchkey.Features.AuthorizationServer.Pages;

/// <summary>
/// The apps a user registered: register one (its client secret shown once), enable or disable
/// it, rotate its secret, delete it. Editing and the logo are on the app's own page.
/// </summary>
[Authorize]
public sealed class OAuthAppsModel(OAuthAppService apps, ScopeCatalog catalog) : PageModel
{
    [BindProperty]
    public OAuthAppInput Input { get; set; } = new();

    public IReadOnlyList<OAuthAppView> Apps { get; private set; } = [];

    public IReadOnlyList<string> ScopeNames => apps.CatalogScopeNames();

    public string Describe(string scope) => catalog.Describe(scope);

    /// <summary>A client id and secret to show once: after registering or rotating.</summary>
    public (string AppName, string ClientId, string? Secret)? Shown { get; private set; }

    public string? Notice { get; private set; }

    public async Task OnGetAsync(CancellationToken cancellationToken) => await LoadAsync(cancellationToken);

    public async Task<IActionResult> OnPostCreateAsync(CancellationToken cancellationToken)
    {
        var (created, errors) = await apps.CreateAsync(User.UserId(), Input.ToRequest(), cancellationToken);
        ModelState.AddErrors(errors, OAuthAppInput.FormFields);
        if (created is not null)
        {
            Shown = (created.Application.DisplayName!, created.Application.ClientId!, created.ClientSecret);
            Input = new();
            ModelState.Clear();
        }
        else
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
        }
        await LoadAsync(cancellationToken);
        return Page();
    }

    public Task<IActionResult> OnPostDisableAsync(string clientId, CancellationToken cancellationToken) =>
        ChangeAsync(clientId, async app =>
        {
            await apps.SetEnabledAsync(app, false, cancellationToken);
            Notice = $"{NameOf(app)} is disabled: its tokens stopped working and it cannot sign anyone in until you enable it.";
        }, cancellationToken);

    public Task<IActionResult> OnPostEnableAsync(string clientId, CancellationToken cancellationToken) =>
        ChangeAsync(clientId, async app =>
        {
            await apps.SetEnabledAsync(app, true, cancellationToken);
            Notice = $"{NameOf(app)} is enabled again.";
        }, cancellationToken);

    public Task<IActionResult> OnPostRotateAsync(string clientId, CancellationToken cancellationToken) =>
        ChangeAsync(clientId, async app =>
        {
            var secret = await apps.RotateSecretAsync(app, cancellationToken);
            if (secret is null)
            {
                Notice = $"{NameOf(app)} is a public app: it has no client secret.";
                return;
            }
            Shown = (NameOf(app), app.ClientId!, secret);
            Notice = "The old secret stopped working. Put the new one in your app's configuration now.";
        }, cancellationToken);

    public Task<IActionResult> OnPostDeleteAsync(string clientId, CancellationToken cancellationToken) =>
        ChangeAsync(clientId, async app =>
        {
            await apps.DeleteAsync(app, cancellationToken);
            Notice = $"Deleted {NameOf(app)}, with every grant and token it had.";
        }, cancellationToken);

    private async Task<IActionResult> ChangeAsync(string clientId, Func<OAuthApplication, Task> change, CancellationToken cancellationToken)
    {
        if (await apps.FindOwnedAsync(User.UserId(), clientId, cancellationToken) is not { } app)
        {
            Response.StatusCode = StatusCodes.Status404NotFound;
            Notice = "You have no app with that client id.";
        }
        else
        {
            await change(app);
        }
        await LoadAsync(cancellationToken);
        return Page();
    }

    // Names stored before hidden characters were refused may still have them: they are not shown.
    private async Task LoadAsync(CancellationToken cancellationToken) =>
        Apps = (await apps.ListOwnedAsync(User.UserId(), cancellationToken)).Select(a => a with { Name = DisplayedText.ForDisplay(a.Name) }).ToList();

    private static string NameOf(OAuthApplication app) => DisplayedText.ForDisplay(app.DisplayName);
}

/// <summary>The register and edit form of an app.</summary>
public sealed class OAuthAppInput
{
    public string? Name { get; set; }
    public string? Description { get; set; }
    public string? HomepageUrl { get; set; }

    /// <summary>One per line.</summary>
    public string? RedirectUris { get; set; }

    public List<string> Scopes { get; set; } = [];
    public bool Confidential { get; set; } = true;

    public OAuthAppRequest ToRequest(bool includeClientType = true) => new(
        Name, Description, string.IsNullOrWhiteSpace(HomepageUrl) ? null : HomepageUrl,
        (RedirectUris ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
        [.. Scopes], includeClientType ? Confidential : null);

    public static OAuthAppInput From(OAuthAppView app) => new()
    {
        Name = app.Name,
        Description = app.Description,
        HomepageUrl = app.HomepageUrl,
        RedirectUris = string.Join('\n', app.RedirectUris),
        Scopes = [.. app.Scopes],
        Confidential = app.ClientType == "confidential",
    };

    /// <summary>The service's field names and the form's.</summary>
    public static readonly Dictionary<string, string> FormFields = new()
    {
        ["name"] = "Input.Name",
        ["description"] = "Input.Description",
        ["homepage_url"] = "Input.HomepageUrl",
        ["redirect_uris"] = "Input.RedirectUris",
        ["scopes"] = "Input.Scopes",
        ["confidential"] = "Input.Confidential",
    };
}

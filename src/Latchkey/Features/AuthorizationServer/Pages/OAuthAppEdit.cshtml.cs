using Latchkey.Common;
using Latchkey.Features.AuthorizationServer.Apps;
using Latchkey.Features.AuthorizationServer.Stores;
using Latchkey.Features.Scopes;
using Latchkey.Features.Site;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Latchkey.Features.AuthorizationServer.Pages;

/// <summary>One of the user's apps: change its details and scopes, upload its logo.</summary>
[Authorize]
public sealed class OAuthAppEditModel(OAuthAppService apps, ScopeCatalog catalog) : PageModel
{
    [BindProperty]
    public OAuthAppInput Input { get; set; } = new();

    public OAuthAppView? App { get; private set; }

    public IReadOnlyList<string> ScopeNames => apps.CatalogScopeNames();

    public string Describe(string scope) => catalog.Describe(scope);

    public string? Notice { get; private set; }

    // Names stored before hidden characters were refused may still have them: they are not shown,
    // and saving the form stores the name as shown.
    private OAuthAppView ViewOf(OAuthApplication app)
    {
        var view = apps.View(app);
        return view with
        {
            Name = DisplayedText.ForDisplay(view.Name),
            Description = view.Description is null ? null : DisplayedText.ForDisplay(view.Description, keepLineBreaks: true),
        };
    }

    public async Task<IActionResult> OnGetAsync(string clientId, CancellationToken cancellationToken)
    {
        if (await apps.FindOwnedAsync(User.UserId(), clientId, cancellationToken) is not { } app)
        {
            return NotFound();
        }
        App = ViewOf(app);
        Input = OAuthAppInput.From(App);
        return Page();
    }

    public async Task<IActionResult> OnPostAsync(string clientId, CancellationToken cancellationToken)
    {
        if (await apps.FindOwnedAsync(User.UserId(), clientId, cancellationToken) is not { } app)
        {
            return NotFound();
        }
        var errors = await apps.UpdateAsync(app, Input.ToRequest(includeClientType: false), cancellationToken);
        ModelState.AddErrors(errors, OAuthAppInput.FormFields);
        App = ViewOf(app);
        if (errors.Count > 0)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
        }
        else
        {
            Notice = "Saved.";
        }
        return Page();
    }

    public async Task<IActionResult> OnPostLogoAsync(string clientId, IFormFile? logo, CancellationToken cancellationToken)
    {
        if (await apps.FindOwnedAsync(User.UserId(), clientId, cancellationToken) is not { } app)
        {
            return NotFound();
        }
        string? error;
        if (logo is null || logo.Length == 0)
        {
            error = "Choose an image file first.";
        }
        else if (logo.Length > OAuthAppLimits.LogoMaxBytes)
        {
            error = $"The logo may be at most {OAuthAppLimits.LogoMaxBytes / 1024} KiB.";
        }
        else
        {
            using var buffer = new MemoryStream();
            await logo.CopyToAsync(buffer, cancellationToken);
            error = await apps.SetLogoAsync(app, logo.ContentType, buffer.ToArray(), cancellationToken);
        }
        if (error is not null)
        {
            ModelState.AddModelError("logo", error);
            Response.StatusCode = StatusCodes.Status400BadRequest;
        }
        else
        {
            Notice = "The new logo is saved.";
        }
        App = ViewOf(app);
        Input = OAuthAppInput.From(App);
        return Page();
    }
}

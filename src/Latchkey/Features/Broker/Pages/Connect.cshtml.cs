using System.Security.Cryptography;
using Latchkey.Features.Broker.Connect;
using Latchkey.Features.Broker.Credentials;
using Latchkey.Features.Broker.Flows;
using Latchkey.Features.Broker.Providers;
using Latchkey.Features.Site;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Latchkey.Features.Broker.Pages;

/// <summary>
/// The connect page an app sends its end user to with a connect session's link: no Latchkey
/// account and no API key in the browser. Opening the link spends it and binds the session to
/// this browser (a cookie); the person then connects one of the session's providers, by OAuth or
/// by typing in a key, and goes back to the app's redirect URI with the outcome.
/// </summary>
public sealed class ConnectModel(ConnectSessionService sessions, ProviderService providers, FlowService flows, CredentialService credentials) : PageModel
{
    private const string CookieName = "latchkey_connect";

    public ConnectSession? Session { get; private set; }

    public IReadOnlyList<ProviderInstance> Providers { get; private set; } = [];

    public string? Problem { get; private set; }

    /// <summary>The provider connected, when the session is done and there is no redirect URI to go back to.</summary>
    public string? Connected { get; private set; }

    /// <summary>A link that can be opened: the page asks the person to continue, which spends it.</summary>
    public string? PendingToken { get; private set; }

    public async Task<IActionResult> OnGetAsync(string? token, CancellationToken cancellationToken)
    {
        if (token is not null)
        {
            // Only looked at: fetching the URL (a link preview, a mail scanner) must not use it up.
            Problem = await sessions.CheckAsync(token, cancellationToken);
            if (Problem is not null)
            {
                Response.StatusCode = StatusCodes.Status400BadRequest;
                return Page();
            }
            PendingToken = token;
            return Page();
        }
        return await LoadAsync(cancellationToken) ? Page() : NoSession();
    }

    /// <summary>The person continues: the link is spent and the session becomes this browser's.</summary>
    public async Task<IActionResult> OnPostOpenAsync(string? token, CancellationToken cancellationToken)
    {
        var browserSecret = WebEncoders.Base64UrlEncode(RandomNumberGenerator.GetBytes(32));
        var (opened, problem) = await sessions.OpenAsync(token, browserSecret, cancellationToken);
        if (opened is null)
        {
            Problem = problem;
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }
        Response.Cookies.Append(CookieName, $"{opened.Id}.{browserSecret}", new CookieOptions
        {
            HttpOnly = true,
            Secure = Request.IsHttps,
            // Lax: the provider's redirect back here is a top-level navigation from another site.
            SameSite = SameSiteMode.Lax,
            Path = ConnectSessionService.PagePath,
            MaxAge = opened.ExpiresAt - DateTimeOffset.UtcNow,
        });
        // The link leaves the address bar.
        return Redirect(Request.PathBase + ConnectSessionService.PagePath);
    }

    public async Task<IActionResult> OnPostStartAsync(string providerId, CancellationToken cancellationToken)
    {
        if (!await LoadAsync(cancellationToken))
        {
            return NoSession();
        }
        if (Providers.FirstOrDefault(p => p.Id == providerId) is not { } provider)
        {
            return NotFound();
        }
        var callback = $"{Request.Scheme}://{Request.Host}{Request.PathBase}{ConnectSessionService.CallbackPath}";
        var (started, error) = await flows.InitAsync(Session!.AccountId, provider.Id, callback, null, cancellationToken,
            Session.EndUserId, [.. CredentialTags.Decode(Session.Tags)], Session.Id);
        if (started is null)
        {
            Problem = $"The connection could not be started: {error!.Message}";
            return Page();
        }
        return Redirect(started.AuthUrl);
    }

    public async Task<IActionResult> OnPostCredentialAsync(string providerId, Dictionary<string, string> fields, CancellationToken cancellationToken)
    {
        if (!await LoadAsync(cancellationToken))
        {
            return NoSession();
        }
        if (Providers.FirstOrDefault(p => p.Id == providerId) is not { } provider)
        {
            return NotFound();
        }
        var request = CredentialMaterial.FromForm(provider.Definition, provider.Id, fields, Session!.EndUserId, [.. CredentialTags.Decode(Session.Tags)]);
        var (created, error) = await credentials.CreateAsync(Session.AccountId, request, cancellationToken);
        if (created is null)
        {
            Problem = error!.Message;
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }
        return await FinishAsync(created, provider, cancellationToken);
    }

    /// <summary>Where the provider sends the person back after an OAuth connection.</summary>
    public async Task<IActionResult> OnGetCallbackAsync(string? code, string? state, string? error, CancellationToken cancellationToken)
    {
        if (!await LoadAsync(cancellationToken))
        {
            return NoSession();
        }
        var (exchanged, problem) = await flows.CompleteRedirectAsync(Session!.AccountId, code, state, error, cancellationToken, Session.Id);
        if (exchanged is null || await credentials.FindAsync(Session.AccountId, exchanged.CredentialId, cancellationToken) is not { } credential)
        {
            // The session stays open: the person may try again (or another provider) until it expires.
            Problem = problem ?? "The connection could not be completed. Try again.";
            return Page();
        }
        return await FinishAsync(credential, Providers.FirstOrDefault(p => p.Id == credential.ProviderInstanceId), cancellationToken);
    }

    private async Task<IActionResult> FinishAsync(Credential credential, ProviderInstance? provider, CancellationToken cancellationToken)
    {
        // Not the request's token: once recorded, the outcome is announced whatever the browser does.
        var (recorded, back) = await sessions.FinishAsync(Session!, credential, null);
        Response.Cookies.Delete(CookieName, new CookieOptions { Path = ConnectSessionService.PagePath });
        if (!recorded)
        {
            // Another request finished the session first: this credential is not the session's, so it is not kept.
            await credentials.DeleteAsync(Session!.AccountId, credential.Id, cancellationToken);
            Problem = "This connection was already completed.";
            return Page();
        }
        if (back is not null)
        {
            return Redirect(back);
        }
        Connected = provider?.Name ?? credential.ProviderKey;
        return Page();
    }

    /// <summary>The session this browser holds, and its providers; false when it holds none.</summary>
    private async Task<bool> LoadAsync(CancellationToken cancellationToken)
    {
        var cookie = Request.Cookies[CookieName]?.Split('.', 2);
        Session = await sessions.ForBrowserAsync(cookie?.ElementAtOrDefault(0), cookie?.ElementAtOrDefault(1), cancellationToken);
        if (Session is null)
        {
            return false;
        }
        var visible = await providers.ListVisibleAsync(Session.AccountId, cancellationToken);
        Providers = [.. Session.Providers.Select(id => visible.FirstOrDefault(p => p.Id == id)).OfType<ProviderInstance>()];
        var policy = ContentSecurityPolicy.For(HttpContext);
        foreach (var provider in Providers.Where(p => p.Definition.AuthType == AuthTypes.OAuth2))
        {
            policy.AllowFormTarget(provider.Definition.AuthorizeUrl);
        }
        policy.AllowFormTarget(Session.RedirectUri);
        return true;
    }

    private PageResult NoSession()
    {
        Problem = "There is no connection in progress in this browser (or it expired). Go back to the app and start again.";
        Response.StatusCode = StatusCodes.Status400BadRequest;
        return Page();
    }
}

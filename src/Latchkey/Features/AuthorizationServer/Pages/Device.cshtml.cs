using System.Collections.Immutable;
using System.Security.Claims;
using Latchkey.Features.Accounts;
using Latchkey.Features.AuthorizationServer.Apps;
using Latchkey.Features.AuthorizationServer.Grants;
using Latchkey.Features.AuthorizationServer.Stores;
using Latchkey.Features.Scopes;
using Latchkey.Features.SecurityEvents;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

using OidcScopes = OpenIddict.Abstractions.OpenIddictConstants.Scopes;

namespace Latchkey.Features.AuthorizationServer.Pages;

/// <summary>
/// The device flow's verification page (RFC 8628 §3.3), at the end-user verification endpoint: the
/// person types the code their device shows (or arrives with it in the link), sees which app on
/// which device asks for what, and approves or denies. OpenIddict has looked the code up before
/// this runs; an unknown, used or expired code comes here as no code at all.
/// </summary>
public sealed class DeviceModel(
    UserManager<LatchkeyUser> users,
    OAuthApplicationManager applications,
    IOpenIddictAuthorizationManager authorizations,
    OAuthPrincipals principals,
    ScopeCatalog catalog,
    SecurityEventLog securityEvents) : PageModel
{
    /// <summary>What the page shows: the code form, the consent for a device, or how the answer went.</summary>
    public enum DeviceStep { EnterCode, Consent, Approved, Denied }

    public DeviceStep Showing { get; private set; } = DeviceStep.EnterCode;

    /// <summary>The code as the person typed it, when it matched no waiting device.</summary>
    public string? RejectedCode { get; private set; }

    public string UserCode { get; private set; } = "";
    public string AppName { get; private set; } = "";
    public bool SelfRegistered { get; private set; }

    /// <summary>For a client identified by its metadata document, the host that document came from.</summary>
    public string? MetadataDocumentHost { get; private set; }
    public string SignedInAs { get; private set; } = "";
    public IReadOnlyList<(string Name, string Description)> Scopes { get; private set; } = [];
    public string SwitchAccountUrl { get; private set; } = "";

    public async Task<IActionResult> OnGetAsync([FromQuery(Name = "done")] string? done)
    {
        if (done is "approved" or "denied")
        {
            Showing = done == "approved" ? DeviceStep.Approved : DeviceStep.Denied;
            return Page();
        }
        return await HandleAsync(decision: null);
    }

    public Task<IActionResult> OnPostAsync([FromForm(Name = "decision")] string? decision) => HandleAsync(decision ?? "");

    private async Task<IActionResult> HandleAsync(string? decision)
    {
        var typed = HttpContext.GetOpenIddictServerRequest()?.UserCode;
        if (string.IsNullOrEmpty(typed))
        {
            return Page();
        }
        var signedIn = await HttpContext.AuthenticateAsync(IdentityConstants.ApplicationScheme);
        var user = signedIn.Succeeded ? await users.GetUserAsync(signedIn.Principal) : null;
        if (user is null)
        {
            // Sign in (or sign up), then come back with the same code.
            return Challenge(new AuthenticationProperties { RedirectUri = Request.PathBase + Request.Path + QueryString.Create(Parameters.UserCode, typed) },
                IdentityConstants.ApplicationScheme);
        }

        // The code's principal carries the client and the scopes it asked for; none when no device waits for this code.
        var code = await HttpContext.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        var clientId = code.Principal?.GetClaim(Claims.ClientId);
        var application = string.IsNullOrEmpty(clientId) ? null : await applications.FindByClientIdAsync(clientId, HttpContext.RequestAborted);
        if (application is null)
        {
            RejectedCode = typed;
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }

        var requested = code.Principal!.GetScopes();
        if (decision is null)
        {
            UserCode = code.Properties?.GetTokenValue(OpenIddictServerAspNetCoreConstants.Tokens.UserCode) ?? typed;
            AppName = DisplayedText.ForDisplay(application.DisplayName ?? application.ClientId!);
            SelfRegistered = application.OwnerId is null;
            MetadataDocumentHost = ClientMetadataDocuments.HostOf(application);
            SignedInAs = $"{DisplayedText.ForDisplay(user.DisplayName)} ({user.Email})";
            Scopes = [.. requested.Where(s => s != OidcScopes.OfflineAccess).Select(s => (s, catalog.Describe(s)))];
            SwitchAccountUrl = ReturnUrls.AppendTo(AccountsSetup.SignOutPath, null);
            Showing = DeviceStep.Consent;
            return Page();
        }

        if (!string.Equals(decision, "approve", StringComparison.Ordinal))
        {
            securityEvents.Record(user.Id, SecurityEventTypes.ConsentDenied, clientId: clientId, detail: "device flow, " + ScopesDetail(requested));
            // The device's next poll gets access_denied.
            return Forbid(new AuthenticationProperties { RedirectUri = Request.PathBase + Request.Path + "?done=denied" },
                OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        }

        // The sign-in's chain gets an authorization of its own, made here because the device
        // request at this page names no client (OpenIddict's own would have no app).
        var scopes = requested.Contains(OidcScopes.OfflineAccess) ? requested : requested.Add(OidcScopes.OfflineAccess);
        var principal = principals.ForUser(user, scopes, ImmutableArray<string>.Empty, offlineAccessImplied: !requested.Contains(OidcScopes.OfflineAccess));
        var authorization = await authorizations.CreateAsync(principal, user.Id, application.Id!, AuthorizationTypes.AdHoc, scopes, HttpContext.RequestAborted);
        var authorizationId = await authorizations.GetIdAsync(authorization, HttpContext.RequestAborted);
        principal = principals.ForUser(user, scopes, ImmutableArray<string>.Empty, offlineAccessImplied: !requested.Contains(OidcScopes.OfflineAccess), authorizationId);
        securityEvents.Record(user.Id, SecurityEventTypes.ConsentGranted, authorizationId, clientId, "device flow, " + ScopesDetail(requested));
        return SignIn(principal, new AuthenticationProperties { RedirectUri = Request.PathBase + Request.Path + "?done=approved" },
            OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    private static string ScopesDetail(ImmutableArray<string> scopes) => "scopes: " + string.Join(' ', scopes);
}

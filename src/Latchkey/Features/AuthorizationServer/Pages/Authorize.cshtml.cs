using System.Collections.Immutable;
using Latchkey.Common;
using Latchkey.Features.Accounts;
using Latchkey.Features.AuthorizationServer.Apps;
using Latchkey.Features.AuthorizationServer.Grants;
using Latchkey.Features.AuthorizationServer.Stores;
using Latchkey.Features.AuthorizationServer.Tokens;
using Latchkey.Features.Scopes;
using Latchkey.Features.SecurityEvents;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Primitives;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

using OidcScopes = OpenIddict.Abstractions.OpenIddictConstants.Scopes;

namespace Latchkey.Features.AuthorizationServer.Pages;

/// <summary>
/// The consent page, at the authorization endpoint's address. OpenIddict has validated the request
/// (client, exact redirect URI, PKCE S256, scopes) before this runs; what is left here is the
/// decision: who the user is, and whether they agree.
/// </summary>
public sealed class AuthorizeModel(
    UserManager<LatchkeyUser> users,
    OAuthApplicationManager applications,
    UserGrants grants,
    OAuthPrincipals principals,
    ScopeCatalog catalog,
    IEnumerable<IResourceNames> resourceNames,
    SecurityEventLog securityEvents) : PageModel
{
    public string? Error { get; private set; }
    public string? ErrorDescription { get; private set; }

    public string AppName { get; private set; } = "";
    public string? AppDescription { get; private set; }
    public string? AppHomepage { get; private set; }
    public string? LogoUrl { get; private set; }
    public string OwnerName { get; private set; } = "";

    /// <summary>No one owns the app: it came through dynamic registration, and no one has vouched for it.</summary>
    public bool SelfRegistered { get; private set; }

    /// <summary>For a client identified by its metadata document, the host that document came from (punycode, as for redirects).</summary>
    public string? MetadataDocumentHost { get; private set; }

    /// <summary>Where the browser goes after the answer: a host, or for an app on this device its loopback address or private-use scheme.</summary>
    public string RedirectHost { get; private set; } = "";

    /// <summary>The redirect opens an app on the user's device (a loopback address or a private-use scheme) rather than a website.</summary>
    public bool RedirectsToDevice { get; private set; }

    public string SignedInAs { get; private set; } = "";
    public IReadOnlyList<(string Name, string Description)> NewScopes { get; private set; } = [];
    public IReadOnlyList<(string Name, string Description)> GrantedScopes { get; private set; } = [];

    /// <summary>The resources (RFC 8707) the tokens will be limited to, named for people where a feature can.</summary>
    public IReadOnlyList<string> Resources { get; private set; } = [];

    /// <summary>The authorization request's parameters, posted back with the decision.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Parameters { get; private set; } = [];

    public string SwitchAccountUrl { get; private set; } = "";

    public Task<IActionResult> OnGetAsync() => HandleAsync(decision: null);

    public Task<IActionResult> OnPostAsync([FromForm(Name = "decision")] string? decision) => HandleAsync(decision ?? "");

    private async Task<IActionResult> HandleAsync(string? decision)
    {
        if (HttpContext.GetOpenIddictServerResponse() is { } failure)
        {
            // RFC 6749 §4.1.2.1: once the client and its redirect URI are known to be genuine,
            // errors go back to the client; otherwise they are never redirected and the person
            // sees what went wrong here.
            if (await TrustedRedirectAsync(HttpContext.GetOpenIddictServerRequest()) is { } redirect)
            {
                return Redirect(QueryHelpers.AddQueryString(redirect.Uri, new Dictionary<string, string?>
                {
                    [OpenIddictConstants.Parameters.Error] = failure.Error,
                    [OpenIddictConstants.Parameters.ErrorDescription] = failure.ErrorDescription,
                    [OpenIddictConstants.Parameters.State] = redirect.State,
                    [OpenIddictConstants.Parameters.Iss] = Issuer(),
                }));
            }
            (Error, ErrorDescription) = Describe(failure);
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }
        if (HttpContext.GetOpenIddictServerRequest() is not { } request)
        {
            Error = OpenIddictConstants.Errors.InvalidRequest;
            ErrorDescription = "The request cannot be read as an authorization request; check its Host header and address.";
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }

        var signedIn = await HttpContext.AuthenticateAsync(IdentityConstants.ApplicationScheme);
        var user = signedIn.Succeeded ? await users.GetUserAsync(signedIn.Principal) : null;
        if (user is null)
        {
            if (request.HasPromptValue(PromptValues.None))
            {
                return Refuse(Errors.LoginRequired, "The user is not signed in.");
            }
            // Sign in (or sign up), then come back to this very request.
            return Challenge(new AuthenticationProperties { RedirectUri = ReturnUrl(request) }, IdentityConstants.ApplicationScheme);
        }

        var application = await applications.FindByClientIdAsync(request.ClientId!, HttpContext.RequestAborted)
                          ?? throw new InvalidOperationException("OpenIddict validated an unknown client.");
        var requested = request.GetScopes();
        var granted = await grants.GrantedScopesAsync(user.Id, application.Id!, HttpContext.RequestAborted);
        var missing = requested.Where(s => !granted.Contains(s) && s != OidcScopes.OfflineAccess).ToList();

        if (decision is null)
        {
            if (missing.Count == 0 && !request.HasPromptValue(PromptValues.Consent))
            {
                return await IssueAsync(user, application, request, consented: false);
            }
            if (request.HasPromptValue(PromptValues.None))
            {
                return Refuse(Errors.ConsentRequired, "The user has not yet agreed to the requested scopes.");
            }
            await DescribeAsync(user, application, request, missing, granted);
            return Page();
        }

        if (!string.Equals(decision, "approve", StringComparison.Ordinal))
        {
            securityEvents.Record(user.Id, SecurityEventTypes.ConsentDenied, clientId: application.ClientId, detail: ScopesDetail(requested));
            return Refuse(Errors.AccessDenied, "The user denied the request.");
        }
        return await IssueAsync(user, application, request, consented: true);
    }

    private async Task<IActionResult> IssueAsync(LatchkeyUser user, OAuthApplication application, OpenIddictRequest request, bool consented)
    {
        // Refresh tokens are part of the reference contract, so offline access comes with every grant;
        // it is reported back as a scope only to clients that asked for it.
        var requested = request.GetScopes();
        var scopes = WithOfflineAccess(requested);
        if (request.GetParameter(IncludeGrantedScopes) is { } include && (string?)include == "true")
        {
            // Incremental authorization: the token covers what was granted before, still within the app's registration.
            var granted = await grants.GrantedScopesAsync(user.Id, application.Id!, HttpContext.RequestAborted);
            foreach (var scope in granted.Order(StringComparer.Ordinal))
            {
                if (!scopes.Contains(scope) && await applications.HasPermissionAsync(application, Permissions.Prefixes.Scope + scope, HttpContext.RequestAborted))
                {
                    scopes = scopes.Add(scope);
                }
            }
        }
        if (consented)
        {
            // The consent is remembered (a permanent authorization) so that later requests within
            // these scopes skip this page.
            var consent = principals.ForUser(user, scopes, request.GetResources(), offlineAccessImplied: false);
            var authorizationId = await grants.RememberAsync(consent, user.Id, application.Id!, scopes, HttpContext.RequestAborted);
            securityEvents.Record(user.Id, SecurityEventTypes.ConsentGranted, authorizationId, application.ClientId, ScopesDetail(requested));
        }
        // No authorization is attached: OpenIddict gives this sign-in an ad-hoc authorization of its
        // own, which its code, access and refresh tokens share. A replayed code or reused refresh
        // token then revokes this chain only; the user's other sign-ins to the app stay valid.
        var principal = principals.ForUser(user, scopes, request.GetResources(), offlineAccessImplied: !requested.Contains(OidcScopes.OfflineAccess));
        return SignIn(principal, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    private async Task<(string Uri, string? State)?> TrustedRedirectAsync(OpenIddictRequest? request)
    {
        if (request?.ClientId is not { Length: > 0 } clientId || request.RedirectUri is not { Length: > 0 } redirectUri ||
            request.ResponseMode is { Length: > 0 } and not ResponseModes.Query)
        {
            return null;
        }
        var application = await applications.FindByClientIdAsync(clientId, HttpContext.RequestAborted);
        return application is { Enabled: true } && await applications.ValidateRedirectUriAsync(application, redirectUri, HttpContext.RequestAborted)
            ? (redirectUri, request.State)
            : null;
    }

    /// <summary>
    /// <c>include_granted_scopes=true</c> asks for a token that covers the scopes granted before as
    /// well as the ones asked for now (incremental authorization, as Google's and Microsoft's servers take it).
    /// </summary>
    public const string IncludeGrantedScopes = "include_granted_scopes";

    private string Issuer() => ServerAddress.Issuer(HttpContext);

    /// <summary>
    /// The error shown for a refused request. A request_uri that is unknown, expired or already
    /// used is RFC 9126's <c>invalid_request_uri</c>; OpenIddict reports it as an invalid token.
    /// </summary>
    private (string? Error, string? Description) Describe(OpenIddictResponse failure) =>
        failure.Error == OpenIddictConstants.Errors.InvalidToken && Request.Query.ContainsKey(OpenIddictConstants.Parameters.RequestUri)
            ? ("invalid_request_uri", "The request_uri is unknown, expired or already used: have the app push its authorization request again.")
            : (failure.Error, failure.ErrorDescription);

    private static ImmutableArray<string> WithOfflineAccess(ImmutableArray<string> scopes) =>
        scopes.Contains(OidcScopes.OfflineAccess) ? scopes : scopes.Add(OidcScopes.OfflineAccess);

    private async Task DescribeAsync(LatchkeyUser user, OAuthApplication application, OpenIddictRequest request, List<string> missing, HashSet<string> granted)
    {
        // Rows stored before hidden characters were refused may still have them: they are not shown.
        AppName = DisplayedText.ForDisplay(application.DisplayName ?? application.ClientId!);
        AppDescription = DisplayedText.ForDisplay(application.Description);
        AppHomepage = application.HomepageUrl;
        LogoUrl = application.LogoVersion > 0 ? OAuthAppService.LogoUrl(application.ClientId!, application.LogoVersion) : null;
        var owner = application.OwnerId is { } ownerId ? await users.FindByIdAsync(ownerId) : null;
        SelfRegistered = owner is null;
        MetadataDocumentHost = ClientMetadataDocuments.HostOf(application);
        OwnerName = owner is null ? "" : DisplayedText.ForDisplay(owner.DisplayName);
        (RedirectHost, RedirectsToDevice) = DescribeRedirect(request.RedirectUri);
        SignedInAs = $"{DisplayedText.ForDisplay(user.DisplayName)} ({user.Email})";
        NewScopes = missing.Select(Describe).ToList();
        // Incremental consent: what the app asks for anew is listed above; everything the person
        // allowed it before is named here.
        GrantedScopes = granted.Where(s => s != OidcScopes.OfflineAccess).Order(StringComparer.Ordinal).Select(Describe).ToList();
        var resources = new List<string>();
        foreach (var resource in request.GetResources())
        {
            string? name = null;
            foreach (var names in resourceNames)
            {
                name ??= await names.DescribeAsync(HttpContext, user.Id, resource, HttpContext.RequestAborted);
            }
            resources.Add(name ?? resource);
        }
        Resources = resources;
        Parameters = CarriedParameters(request);
        SwitchAccountUrl = ReturnUrls.AppendTo(AccountsSetup.SignOutPath, null);
    }

    /// <summary>
    /// The host the browser will be sent to, in its ASCII (punycode) form so that a look-alike in
    /// another script shows as what it is; for a private-use scheme (RFC 8252 §7.1), the scheme.
    /// </summary>
    private static (string Host, bool OnThisDevice) DescribeRedirect(string? redirectUri)
    {
        if (!Uri.TryCreate(redirectUri, UriKind.Absolute, out var redirect))
        {
            return ("", false);
        }
        if (redirect.Scheme != Uri.UriSchemeHttp && redirect.Scheme != Uri.UriSchemeHttps)
        {
            return (redirect.Scheme, true);
        }
        var host = redirect.IsDefaultPort ? redirect.IdnHost : $"{redirect.IdnHost}:{redirect.Port}";
        return (host, redirect.IsLoopback);
    }

    private static string ScopesDetail(ImmutableArray<string> scopes) => "scopes: " + string.Join(' ', scopes);

    private (string, string) Describe(string scope) => (scope, catalog.Describe(scope));

    private string ReturnUrl(OpenIddictRequest request)
    {
        var query = QueryString.Create(CarriedParameters(request).Select(p => new KeyValuePair<string, string?>(p.Key, p.Value)));
        return Request.PathBase + Request.Path + query;
    }

    /// <summary>
    /// What identifies this authorization request on its way through sign-in and the consent form:
    /// a pushed request (RFC 9126) by its client_id and request_uri, which stays good until the
    /// sign-in completes; any other by all its parameters (each value of a repeated one, like resource).
    /// </summary>
    private List<KeyValuePair<string, string>> CarriedParameters(OpenIddictRequest request)
    {
        var pushed = Request.Query[OpenIddictConstants.Parameters.RequestUri].FirstOrDefault()
                     ?? (Request.HasFormContentType ? Request.Form[OpenIddictConstants.Parameters.RequestUri].FirstOrDefault() : null);
        if (!string.IsNullOrEmpty(pushed))
        {
            return [new(OpenIddictConstants.Parameters.ClientId, request.ClientId ?? ""), new(OpenIddictConstants.Parameters.RequestUri, pushed)];
        }
        return [.. request.GetParameters()
            .Where(p => p.Key != "decision" && p.Key != "__RequestVerificationToken")
            .SelectMany(p => ((StringValues)p.Value).Select(value => new KeyValuePair<string, string>(p.Key, value ?? "")))];
    }

    private ForbidResult Refuse(string error, string description) =>
        Forbid(TokenEndpoint.ErrorProperties(error, description), OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
}

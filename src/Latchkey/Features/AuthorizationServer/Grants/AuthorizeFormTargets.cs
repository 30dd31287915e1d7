using Latchkey.Features.AuthorizationServer.Stores;
using Latchkey.Features.Site;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.WebUtilities;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Latchkey.Features.AuthorizationServer.Grants;

/// <summary>
/// Where the forms of the sign-in path lead: the consent form's Approve and Deny, and a sign-in or
/// sign-up form on its way back to an authorization request, end (through redirects that Chromium
/// checks against <c>form-action</c>) at the app's redirect URI. The app's origin is allowed only
/// when the URI is registered for that client, so an attacker's URI never widens the policy.
/// </summary>
internal sealed class AuthorizeFormTargets(OAuthApplicationManager applications) : IContentSecurityPolicyContributor
{
    /// <summary>The one inline script of OpenIddict's form_post page, which submits the code to the app.</summary>
    public const string FormPostScript = "document.form.submit();";

    public async ValueTask ContributeAsync(HttpContext context, ContentSecurityPolicy policy)
    {
        string? clientId, redirectUri;
        if (context.Request.Path.StartsWithSegments(AuthorizationServerSetup.AuthorizePath))
        {
            // OpenIddict has read the request (query or posted form) before the page or its own answer.
            var request = context.GetOpenIddictServerRequest();
            (clientId, redirectUri) = (request?.ClientId, request?.RedirectUri);
            policy.AllowInlineScript(FormPostScript);
        }
        else if (ReturnUrlOf(context.Request) is { } returnUrl && returnUrl.StartsWith(AuthorizationServerSetup.AuthorizePath + "?", StringComparison.Ordinal))
        {
            var query = QueryHelpers.ParseQuery(returnUrl[returnUrl.IndexOf('?')..]);
            clientId = query.GetValueOrDefault(Parameters.ClientId).ToString();
            redirectUri = query.GetValueOrDefault(Parameters.RedirectUri).ToString();
        }
        else
        {
            return;
        }
        if (string.IsNullOrEmpty(clientId) || await applications.FindByClientIdAsync(clientId, context.RequestAborted) is not { } application)
        {
            return;
        }
        if (string.IsNullOrEmpty(redirectUri))
        {
            // A pushed request (RFC 9126) names its redirect URI only inside the pushed request:
            // any of the app's registered ones may be where the sign-in ends.
            foreach (var registered in await applications.GetRedirectUrisAsync(application, context.RequestAborted))
            {
                policy.AllowFormTarget(registered);
            }
            return;
        }
        if (await applications.ValidateRedirectUriAsync(application, redirectUri, context.RequestAborted))
        {
            policy.AllowFormTarget(redirectUri);
        }
    }

    private static string? ReturnUrlOf(HttpRequest request)
    {
        foreach (var (name, value) in request.Query)
        {
            if (name.Equals("returnUrl", StringComparison.OrdinalIgnoreCase))
            {
                return value.ToString();
            }
        }
        return null;
    }
}

using System.Collections.Immutable;
using System.Security.Claims;
using Latchkey.Features.Accounts;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

using OidcScopes = OpenIddict.Abstractions.OpenIddictConstants.Scopes;

namespace Latchkey.Features.AuthorizationServer.Grants;

/// <summary>Builds the principals OpenIddict turns into codes and tokens.</summary>
public sealed class OAuthPrincipals
{
    /// <summary>
    /// Marks a grant whose <c>offline_access</c> Latchkey added (every user grant has refresh
    /// tokens) rather than the client asked for: token responses then leave it out of <c>scope</c>
    /// and <c>scopes</c>. Kept in codes and refresh tokens, never in access or identity tokens.
    /// </summary>
    public const string OfflineAccessImpliedClaim = "lk_offline_implied";

    /// <summary>A user, granted <paramref name="scopes"/> for <paramref name="resources"/>.</summary>
    public ClaimsPrincipal ForUser(LatchkeyUser user, ImmutableArray<string> scopes, ImmutableArray<string> resources, bool offlineAccessImplied,
        string? authorizationId = null)
    {
        var identity = NewIdentity();
        identity.SetClaim(Claims.Subject, user.Id)
            .SetClaim(Claims.Name, user.DisplayName)
            .SetClaim(Claims.Email, user.Email)
            .SetClaim(Claims.EmailVerified, user.EmailConfirmed)
            .SetClaim(Claims.Zoneinfo, user.TimeZone);
        identity.SetScopes(scopes);
        identity.SetResources(resources);
        if (offlineAccessImplied)
        {
            identity.SetClaim(OfflineAccessImpliedClaim, "true");
        }
        if (authorizationId is not null)
        {
            identity.SetAuthorizationId(authorizationId);
        }
        identity.SetDestinations(claim => DestinationsOf(claim, scopes));
        return new ClaimsPrincipal(identity);
    }

    /// <summary>The scopes a token response reports for <paramref name="principal"/>: its scopes, without an implied <c>offline_access</c>.</summary>
    public static IEnumerable<string> ReportedScopes(ClaimsPrincipal principal) =>
        principal.GetScopes().Where(scope => scope != OidcScopes.OfflineAccess || principal.GetClaim(OfflineAccessImpliedClaim) is null);

    /// <summary>An app acting as itself (client credentials): the subject is its client id.</summary>
    public ClaimsPrincipal ForApplication(string clientId, string? displayName, ImmutableArray<string> scopes, ImmutableArray<string> resources)
    {
        var identity = NewIdentity();
        identity.SetClaim(Claims.Subject, clientId).SetClaim(Claims.Name, displayName);
        identity.SetScopes(scopes);
        identity.SetResources(resources);
        identity.SetDestinations(claim => claim.Type == Claims.Subject ? [Destinations.AccessToken] : []);
        return new ClaimsPrincipal(identity);
    }

    private static ClaimsIdentity NewIdentity() =>
        new(TokenValidationParameters.DefaultAuthenticationType, Claims.Name, Claims.Role);

    // Access tokens carry only the subject (and scopes): everything else comes from the user
    // record at use time. Identity tokens carry what the granted OpenID scopes allow.
    private static IEnumerable<string> DestinationsOf(Claim claim, ImmutableArray<string> scopes) => claim.Type switch
    {
        Claims.Subject => [Destinations.AccessToken, Destinations.IdentityToken],
        Claims.Name or Claims.Zoneinfo when scopes.Contains(OidcScopes.Profile) => [Destinations.IdentityToken],
        Claims.Email or Claims.EmailVerified when scopes.Contains(OidcScopes.Email) => [Destinations.IdentityToken],
        _ => [],
    };
}

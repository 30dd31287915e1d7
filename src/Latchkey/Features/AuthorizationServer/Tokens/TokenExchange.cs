using System.Collections.Immutable;
using System.Security.Claims;
using System.Text.Json.Nodes;
using Latchkey.Common;
using Latchkey.Features.Accounts;
using Latchkey.Features.AuthorizationServer.Grants;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Latchkey.Features.AuthorizationServer.Tokens;

/// <summary>
/// Token exchange (RFC 8693): an app that holds a user's access token trades it for a narrower one
/// (fewer scopes, one resource as its audience, no longer lived) to hand to a tool or another agent,
/// with an <c>act</c> claim naming who acts. OpenIddict has validated the subject token (and the
/// actor token) and that the app may use the grant; the policy here decides what may be exchanged:
/// <list type="bullet">
/// <item>only a user's token (not an app's own), and only by the app it was issued to;</item>
/// <item>scopes within the subject token's, or <c>invalid_scope</c>;</item>
/// <item>a resource within the subject token's audience when it has one, or <c>invalid_target</c>;</item>
/// <item>the new token expires no later than the subject token.</item>
/// </list>
/// </summary>
public static class TokenExchange
{
    /// <summary>RFC 8693 §4.1: who acts for the subject; nested for a chain of delegations.</summary>
    public const string ActorClaim = "act";

    public static async Task<IResult> ExchangeAsync(HttpContext context, OpenIddictRequest request, UserManager<LatchkeyUser> users, OAuthPrincipals principals, TimeProvider time)
    {
        var result = await context.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        var subject = result.Principal;
        var clientId = request.ClientId!;
        var userId = subject?.GetClaim(Claims.Subject);
        if (subject is null || string.IsNullOrEmpty(userId) || userId == clientId || subject.GetPresenters().Contains(userId))
        {
            return TokenEndpoint.Refuse(Errors.InvalidGrant, "The subject_token acts for no user (it is an app's own token); only a user's token can be exchanged.");
        }
        if (!subject.HasPresenter(clientId))
        {
            return TokenEndpoint.Refuse(Errors.InvalidGrant, "The subject_token was not issued to this app; only the app a token was issued to may exchange it.");
        }
        var user = await users.FindByIdAsync(userId);
        if (user is null || await users.IsLockedOutAsync(user))
        {
            return TokenEndpoint.Refuse(Errors.InvalidGrant, "The account the subject_token acts for no longer exists or is locked.");
        }

        var held = subject.GetScopes();
        var scopes = request.GetScopes() is { IsDefaultOrEmpty: false } asked ? asked : held;
        if (scopes.FirstOrDefault(scope => !held.Contains(scope)) is { } wider)
        {
            return TokenEndpoint.Refuse(Errors.InvalidScope, $"The subject_token was not granted {InputEcho.Quote(wider)}; an exchanged token can only have fewer scopes.");
        }
        var heldAudiences = subject.GetAudiences();
        var resources = request.GetResources() is { IsDefaultOrEmpty: false } named ? named : heldAudiences;
        if (!heldAudiences.IsDefaultOrEmpty && resources.FirstOrDefault(resource => !heldAudiences.Any(a => ServerAddress.SameResource(a, resource))) is { } other)
        {
            return TokenEndpoint.Refuse(Errors.InvalidTarget, $"The subject_token is limited to its audience; {InputEcho.Quote(other)} is not in it.");
        }

        var actor = result.Properties?.GetParameter<ClaimsPrincipal>(OpenIddictServerAspNetCoreConstants.Properties.ActorTokenPrincipal);
        // In the subject token's chain: whatever ends that sign-in ends the exchanged token too.
        var principal = principals.ForUser(user, scopes, resources, offlineAccessImplied: false, subject.GetAuthorizationId());
        principal.SetClaim(ActorClaim, ActorOf(clientId, actor, subject));
        // The exchanged token lives no longer than the one it came from.
        if (subject.GetExpirationDate() is { } expires)
        {
            var left = expires - time.GetUtcNow();
            principal.SetAccessTokenLifetime(left > TimeSpan.Zero ? left : TimeSpan.FromSeconds(1));
        }
        principal.SetDestinations(claim => claim.Type == ActorClaim || claim.Type == Claims.Subject ? [Destinations.AccessToken] : []);
        return Results.SignIn(principal, authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    /// <summary>
    /// <c>{"sub": who acts, "client_id": the exchanging app, "act": whoever acted before}</c>: the
    /// actor token's subject, or the app itself when it acts on its own behalf.
    /// </summary>
    private static JsonObject ActorOf(string clientId, ClaimsPrincipal? actor, ClaimsPrincipal subject)
    {
        var act = new JsonObject
        {
            ["sub"] = actor?.GetClaim(Claims.Subject) ?? clientId,
            ["client_id"] = clientId,
        };
        if (subject.GetClaim(ActorClaim) is { Length: > 0 } previous && JsonNode.Parse(previous) is JsonObject chain)
        {
            act[ActorClaim] = chain;
        }
        return act;
    }
}

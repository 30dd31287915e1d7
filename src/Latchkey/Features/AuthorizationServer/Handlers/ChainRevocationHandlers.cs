using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Latchkey.Features.AuthorizationServer.Handlers;

// A sign-in's code, access tokens and refresh tokens form a chain: they share the ad-hoc
// authorization OpenIddict made for that sign-in. Ending the chain ends that sign-in only.

/// <summary>
/// RFC 7009 §2.1: revoking a refresh token revokes the access tokens of the same grant too, here
/// the chain it belongs to (OpenIddict revokes only the token presented). Runs after OpenIddict
/// revoked the presented token.
/// </summary>
internal sealed class RevokeChainOfRevokedRefreshToken(IOpenIddictTokenManager tokens, IOpenIddictAuthorizationManager authorizations)
    : IOpenIddictServerHandler<HandleRevocationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Scoped<HandleRevocationRequestContext, RevokeChainOfRevokedRefreshToken>(
        HandlerDescriptors.After(OpenIddictServerHandlers.Revocation.RevokeToken.Descriptor));

    public async ValueTask HandleAsync(HandleRevocationRequestContext context)
    {
        if (context.GenericTokenPrincipal is { } token && token.GetTokenType() == TokenTypeIdentifiers.RefreshToken
            && token.GetAuthorizationId() is { Length: > 0 } authorizationId)
        {
            await ChainRevocation.RevokeAsync(authorizationId, tokens, authorizations, context.CancellationToken);
        }
    }
}

/// <summary>
/// When a redeemed code or refresh token comes back, OpenIddict revokes every token of its
/// authorization (the chain) but leaves the authorization itself valid; an ad-hoc one is revoked
/// here too, so the chain is over in every view (authorized apps, introspection).
/// </summary>
internal sealed class RevokeChainOfReusedToken(IOpenIddictTokenManager tokens, IOpenIddictAuthorizationManager authorizations)
    : IOpenIddictServerHandler<ApplyTokenResponseContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Scoped<ApplyTokenResponseContext, RevokeChainOfReusedToken>(
        HandlerDescriptors.After(OpenIddictServerHandlers.Exchange.NormalizeErrorResponse.Descriptor, 550));

    public async ValueTask HandleAsync(ApplyTokenResponseContext context)
    {
        if (context.Response.ErrorUri is RecordReuseRevocation.CodeReuseError or RecordReuseRevocation.RefreshTokenReuseError
            && PresentedGrantToken.Of(context.Transaction) is { AuthorizationId: { Length: > 0 } authorizationId })
        {
            await ChainRevocation.RevokeAsync(authorizationId, tokens, authorizations, context.CancellationToken);
        }
    }
}

internal static class ChainRevocation
{
    /// <summary>Revokes every token of the authorization, and the authorization itself when it is a sign-in's own (ad-hoc) one.</summary>
    public static async Task RevokeAsync(string authorizationId, IOpenIddictTokenManager tokens, IOpenIddictAuthorizationManager authorizations, CancellationToken cancellationToken)
    {
        await tokens.RevokeByAuthorizationIdAsync(authorizationId, cancellationToken);
        if (await authorizations.FindByIdAsync(authorizationId, cancellationToken) is { } authorization
            && await authorizations.HasTypeAsync(authorization, AuthorizationTypes.AdHoc, cancellationToken))
        {
            await authorizations.TryRevokeAsync(authorization, cancellationToken);
        }
    }
}

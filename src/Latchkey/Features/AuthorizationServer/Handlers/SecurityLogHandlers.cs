using Latchkey.Features.AuthorizationServer.Stores;
using Latchkey.Features.Telemetry;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Latchkey.Features.AuthorizationServer.Handlers;

// The account's security log, fed from the token, revocation and reuse paths (queued rows only).

/// <summary>
/// The account a token acts for: its subject, or for a token an app obtained for itself
/// (client credentials, whose subject is the client id) the app's owner. Null when there is none.
/// </summary>
internal static class TokenAccounts
{
    public static async ValueTask<string?> AccountOfAsync(string? subject, string? clientId, OAuthApplicationManager applications, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(subject))
        {
            return null;
        }
        if (subject != clientId)
        {
            return subject;
        }
        return (await applications.FindByClientIdAsync(clientId, cancellationToken))?.OwnerId;
    }
}

/// <summary>
/// Records <c>token_issued</c> in the account's security log for every successful token endpoint
/// answer: the access token's id, the client, the grant type and the refresh token's id. Queued, so
/// the token endpoint does no extra write.
/// </summary>
internal sealed class RecordIssuedTokens(OAuthApplicationManager applications, SecurityEvents.SecurityEventLog securityEvents, LatchkeyMetrics metrics)
    : IOpenIddictServerHandler<ProcessSignInContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Scoped<ProcessSignInContext, RecordIssuedTokens>(
        HandlerDescriptors.After(OpenIddictServerHandlers.AttachSignInParameters.Descriptor));

    public async ValueTask HandleAsync(ProcessSignInContext context)
    {
        // A token exchange issues its access token as the "issued token" (RFC 8693).
        if (context.EndpointType != OpenIddictServerEndpointType.Token || (context.AccessTokenPrincipal ?? context.IssuedTokenPrincipal) is not { } access)
        {
            return;
        }
        var clientId = context.Request.ClientId;
        metrics.TokenIssued(context.Request.GrantType, clientId);
        var account = await TokenAccounts.AccountOfAsync(context.Principal?.GetClaim(Claims.Subject), clientId, applications, context.CancellationToken);
        if (account is null)
        {
            return;
        }
        var detail = "grant_type=" + context.Request.GrantType;
        if (context.RefreshTokenPrincipal?.GetTokenId() is { } refreshTokenId)
        {
            detail += " refresh_token_id=" + refreshTokenId;
        }
        if (context.Principal?.GetClaim(Tokens.TokenExchange.ActorClaim) is { Length: > 0 } actor)
        {
            detail += " act=" + actor;
        }
        foreach (var resource in access.GetAudiences())
        {
            detail += " resource=" + resource;
        }
        securityEvents.Record(account, SecurityEvents.SecurityEventTypes.TokenIssued, access.GetTokenId(), clientId, detail);
    }
}

/// <summary>Records <c>token_revoked</c> for a token an app revoked at the revocation endpoint (RFC 7009).</summary>
internal sealed class RecordRevokedTokens(OAuthApplicationManager applications, SecurityEvents.SecurityEventLog securityEvents, LatchkeyMetrics metrics)
    : IOpenIddictServerHandler<HandleRevocationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Scoped<HandleRevocationRequestContext, RecordRevokedTokens>(
        HandlerDescriptors.After(OpenIddictServerHandlers.Revocation.RevokeToken.Descriptor));

    public async ValueTask HandleAsync(HandleRevocationRequestContext context)
    {
        if (context.GenericTokenPrincipal is not { } token)
        {
            return;
        }
        var clientId = context.Request.ClientId;
        metrics.TokenRevoked(clientId, "revocation_endpoint");
        var account = await TokenAccounts.AccountOfAsync(token.GetClaim(Claims.Subject), token.GetPresenters().FirstOrDefault() ?? clientId, applications, context.CancellationToken);
        if (account is not null)
        {
            securityEvents.Record(account, SecurityEvents.SecurityEventTypes.TokenRevoked, token.GetTokenId(), clientId, "revoked by the app: " + (token.GetTokenType() == TokenTypeIdentifiers.RefreshToken ? "refresh token" : "access token"));
        }
    }
}

/// <summary>
/// Notes who a code or refresh token presented at the token endpoint belongs to, before OpenIddict
/// checks whether it was already redeemed, for <see cref="RecordReuseRevocation"/>. No database work.
/// </summary>
internal sealed class NotePresentedGrantToken : IOpenIddictServerHandler<ValidateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Singleton<ValidateTokenContext, NotePresentedGrantToken>(
        HandlerDescriptors.Before(OpenIddictServerHandlers.Protection.ValidateTokenEntry.Descriptor));

    public ValueTask HandleAsync(ValidateTokenContext context)
    {
        if (context.EndpointType == OpenIddictServerEndpointType.Token && context.Principal is { } principal
            && principal.GetTokenType() is TokenTypeIdentifiers.RefreshToken or TokenTypeIdentifiers.Private.AuthorizationCode)
        {
            PresentedGrantToken.Note(context.Transaction, new PresentedGrantToken(
                principal.GetClaim(Claims.Subject), principal.GetPresenters().FirstOrDefault(), principal.GetTokenId(),
                principal.GetAuthorizationId(), principal.GetTokenType() == TokenTypeIdentifiers.Private.AuthorizationCode));
        }
        return ValueTask.CompletedTask;
    }
}

/// <summary>What <see cref="NotePresentedGrantToken"/> tells <see cref="RecordReuseRevocation"/>, through the request's transaction.</summary>
internal sealed record PresentedGrantToken(string? Subject, string? Presenter, string? TokenId, string? AuthorizationId, bool IsCode)
{
    private const string Key = "latchkey.presented_grant_token";

    public static void Note(OpenIddictServerTransaction transaction, PresentedGrantToken token) => transaction.SetProperty(Key, token);

    public static PresentedGrantToken? Of(OpenIddictServerTransaction transaction) => transaction.GetProperty<PresentedGrantToken>(Key);
}

/// <summary>
/// OpenIddict revokes a grant's whole token chain when a redeemed code or refresh token comes back
/// (RFC 6749 §10.5, OAuth 2.1 §4.3.1), then answers with the error URI of <see cref="CodeReuseError"/>
/// or <see cref="RefreshTokenReuseError"/>. That answer is recorded as <c>token_revoked</c> for the
/// account <see cref="NotePresentedGrantToken"/> noted.
/// </summary>
internal sealed class RecordReuseRevocation(OAuthApplicationManager applications, SecurityEvents.SecurityEventLog securityEvents, LatchkeyMetrics metrics)
    : IOpenIddictServerHandler<ApplyTokenResponseContext>
{
    internal const string CodeReuseError = "https://documentation.openiddict.com/errors/ID2010";
    internal const string RefreshTokenReuseError = "https://documentation.openiddict.com/errors/ID2012";

    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Scoped<ApplyTokenResponseContext, RecordReuseRevocation>(
        HandlerDescriptors.After(OpenIddictServerHandlers.Exchange.NormalizeErrorResponse.Descriptor, 600));

    public async ValueTask HandleAsync(ApplyTokenResponseContext context)
    {
        if (context.Response.ErrorUri is not (CodeReuseError or RefreshTokenReuseError)
            || PresentedGrantToken.Of(context.Transaction) is not { } presented)
        {
            return;
        }
        metrics.TokenRevoked(presented.Presenter, presented.IsCode ? "code_reuse" : "refresh_token_reuse");
        var account = await TokenAccounts.AccountOfAsync(presented.Subject, presented.Presenter, applications, context.CancellationToken);
        if (account is not null)
        {
            securityEvents.Record(account, SecurityEvents.SecurityEventTypes.TokenRevoked, presented.AuthorizationId, presented.Presenter,
                $"{(presented.IsCode ? "authorization code" : "refresh token")} {presented.TokenId} was used twice: every token of that sign-in was revoked");
        }
    }
}

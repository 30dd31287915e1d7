using System.Text.Json.Nodes;
using Latchkey.Common;
using Latchkey.Features.AuthorizationServer.Tokens;
using Microsoft.AspNetCore;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Latchkey.Features.AuthorizationServer.Handlers;

// DPoP (RFC 9449), which OpenIddict does not implement: proofs checked where they arrive, tokens
// bound to the proof's key (cnf.jkt), and bound tokens honoured only with a proof by that key.

/// <summary>The key a request proved it holds, kept in the transaction between the handlers that check and use it.</summary>
internal static class DPoPTransaction
{
    private const string KeyProperty = "latchkey.dpop_jkt";

    /// <summary>The claim of an authorization code that says which key must redeem it (from <c>dpop_jkt</c>, RFC 9449 §10).</summary>
    public const string CodeKeyClaim = "lk_dpop_jkt";

    public const string KeyParameter = "dpop_jkt";

    public static string? ProvenKey(OpenIddictServerTransaction transaction) => transaction.GetProperty<string>(KeyProperty);

    public static void SetProvenKey(OpenIddictServerTransaction transaction, string thumbprint) => transaction.SetProperty(KeyProperty, thumbprint);

    /// <summary>The thumbprint a token principal is bound to: its <c>cnf.jkt</c>, or, for a code, the <c>dpop_jkt</c> it was asked with.</summary>
    public static string? BoundKey(System.Security.Claims.ClaimsPrincipal principal) =>
        DPoPProofs.BoundThumbprint(principal.GetClaim(Claims.Confirmation))
        ?? (principal.GetTokenType() == TokenTypeIdentifiers.Private.AuthorizationCode ? principal.GetClaim(CodeKeyClaim) : null);
}

/// <summary>
/// Token and pushed authorization requests may carry a DPoP proof (RFC 9449 §5, §10.1): it is
/// checked before anything else, and a server nonce is asked for (<c>use_dpop_nonce</c>, with a
/// nonce in <c>DPoP-Nonce</c>) unless turned off. Every answer to a proof carries a fresh nonce.
/// A pushed request's <c>dpop_jkt</c> must name the proof's key, and is set from it when absent.
/// </summary>
internal sealed class ValidateDPoPProof<TContext>(DPoPProofs proofs, IOptions<AuthorizationServerOptions> options) : IOpenIddictServerHandler<TContext>
    where TContext : BaseValidatingContext
{
    public static OpenIddictServerHandlerDescriptor Descriptor(int order) => HandlerDescriptors.Singleton<TContext, ValidateDPoPProof<TContext>>(
        order, filters => filters.AddFilter<OpenIddictServerAspNetCoreHandlerFilters.RequireHttpRequest>());

    public async ValueTask HandleAsync(TContext context)
    {
        var request = context.Transaction.GetHttpRequest() ?? throw new InvalidOperationException("No HTTP request.");
        if (!DPoPProofs.HasProof(request) || context.Transaction.Request is not { } parameters)
        {
            return;
        }
        var (proof, problem) = await proofs.ValidateAsync(request, request.Method, DPoPProofs.RequestUrl(request), accessToken: null);
        if (proof is null)
        {
            context.Reject(DPoPScheme.InvalidProof, problem);
            return;
        }
        // A fresh nonce with every answer, so that a client's next proof can carry it.
        request.HttpContext.Response.Headers[DPoPScheme.NonceHeader] = proofs.NewNonce();
        if (options.Value.DPoP.RequireNonce && !proofs.IsCurrentNonce(proof.Nonce))
        {
            context.Reject(DPoPScheme.UseNonce, proof.Nonce is null
                ? "This server requires a nonce in DPoP proofs: make a new proof with the nonce in the DPoP-Nonce header of this answer."
                : "The DPoP proof's nonce is not current: make a new proof with the nonce in the DPoP-Nonce header of this answer.");
            return;
        }
        if (context is ExtractPushedAuthorizationRequestContext)
        {
            var asked = (string?)parameters[DPoPTransaction.KeyParameter];
            if (asked is not null && !DPoPProofs.SameKey(proof.KeyThumbprint, asked))
            {
                context.Reject(DPoPScheme.InvalidProof, "The dpop_jkt parameter names another key than the one that signed the DPoP proof.");
                return;
            }
            parameters[DPoPTransaction.KeyParameter] = proof.KeyThumbprint;
        }
        DPoPTransaction.SetProvenKey(context.Transaction, proof.KeyThumbprint);
    }
}

/// <summary>
/// The userinfo endpoint accepts a DPoP-bound access token as <c>Authorization: DPoP &lt;token&gt;</c>
/// with a proof for it (RFC 9449 §7), where OpenIddict reads only the Bearer scheme.
/// </summary>
internal sealed class ExtractDPoPAccessToken(DPoPProofs proofs) : IOpenIddictServerHandler<ExtractUserInfoRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Singleton<ExtractUserInfoRequestContext, ExtractDPoPAccessToken>(
        HandlerDescriptors.After(OpenIddictServerAspNetCoreHandlers.ExtractAccessToken<ExtractUserInfoRequestContext>.Descriptor),
        filters => filters.AddFilter<OpenIddictServerAspNetCoreHandlerFilters.RequireHttpRequest>());

    public async ValueTask HandleAsync(ExtractUserInfoRequestContext context)
    {
        var request = context.Transaction.GetHttpRequest() ?? throw new InvalidOperationException("No HTTP request.");
        if (context.Transaction.Request is not { } parameters || DPoPScheme.TokenOf(request.Headers.Authorization.ToString()) is not { } token)
        {
            return;
        }
        var (proof, problem) = await proofs.ValidateAsync(request, request.Method, DPoPProofs.RequestUrl(request), token);
        if (proof is null)
        {
            context.Reject(DPoPScheme.InvalidProof, problem);
            return;
        }
        parameters.AccessToken = token;
        DPoPTransaction.SetProvenKey(context.Transaction, proof.KeyThumbprint);
    }
}

/// <summary>
/// A token bound to a key (an access or refresh token's <c>cnf.jkt</c>, a code's <c>dpop_jkt</c>)
/// is honoured only when this request proved it holds that key. Takes the place of OpenIddict's
/// proof-of-possession check for such tokens, which knows only certificate binding and would
/// throw. Introspection and revocation, where OpenIddict turns that check off, need no proof.
/// </summary>
internal sealed class RequireProofForBoundTokens : IOpenIddictServerHandler<ValidateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Singleton<ValidateTokenContext, RequireProofForBoundTokens>(
        HandlerDescriptors.Before(OpenIddictServerHandlers.Protection.ValidateProofOfPossession.Descriptor));

    public ValueTask HandleAsync(ValidateTokenContext context)
    {
        if (context.DisableProofOfPossessionValidation || context.Principal is not { } principal || DPoPTransaction.BoundKey(principal) is not { } bound)
        {
            return ValueTask.CompletedTask;
        }
        var error = context.EndpointType == OpenIddictServerEndpointType.Token ? Errors.InvalidGrant : Errors.InvalidToken;
        var proven = DPoPTransaction.ProvenKey(context.Transaction);
        if (proven is null)
        {
            context.Reject(error, "This token is bound to a DPoP key: send a DPoP proof signed by that key with the request.");
            return ValueTask.CompletedTask;
        }
        if (!DPoPProofs.SameKey(proven, bound))
        {
            context.Reject(error, "The DPoP proof is signed by another key than the one this token is bound to.");
            return ValueTask.CompletedTask;
        }
        context.DisableProofOfPossessionValidation = true;
        return ValueTask.CompletedTask;
    }
}

/// <summary>An authorization request's <c>dpop_jkt</c> must be a key thumbprint (RFC 9449 §10), or the request is refused.</summary>
internal sealed class RejectMalformedDPoPKeyThumbprint<TContext> : IOpenIddictServerHandler<TContext>
    where TContext : BaseValidatingContext
{
    public static OpenIddictServerHandlerDescriptor Descriptor(int order) => HandlerDescriptors.Singleton<TContext, RejectMalformedDPoPKeyThumbprint<TContext>>(order);

    public ValueTask HandleAsync(TContext context)
    {
        if ((string?)context.Transaction.Request?[DPoPTransaction.KeyParameter] is { } thumbprint && !DPoPProofs.IsThumbprint(thumbprint))
        {
            context.Reject(Errors.InvalidRequest, "The dpop_jkt parameter must be the base64url SHA-256 thumbprint (RFC 7638) of the DPoP key.");
        }
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// Binds what a sign-in issues to the proven key (RFC 9449 §5, §6): access tokens always, refresh
/// tokens of public clients (a confidential client's are bound to its own authentication already),
/// a token exchange's access token; and an authorization code to the <c>dpop_jkt</c> it was asked with.
/// </summary>
internal sealed class BindIssuedTokensToDPoPKey : IOpenIddictServerHandler<ProcessSignInContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Singleton<ProcessSignInContext, BindIssuedTokensToDPoPKey>(
        HandlerDescriptors.After(OpenIddictServerHandlers.PrepareUserCodePrincipal.Descriptor));

    public ValueTask HandleAsync(ProcessSignInContext context)
    {
        if (context.AuthorizationCodePrincipal is { } code && (string?)context.Request?[DPoPTransaction.KeyParameter] is { } asked)
        {
            code.SetClaim(DPoPTransaction.CodeKeyClaim, asked);
        }
        // A code's key requirement ends with the code: its refresh tokens carry cnf or nothing.
        context.RefreshTokenPrincipal?.RemoveClaims(DPoPTransaction.CodeKeyClaim);
        if (context.EndpointType != OpenIddictServerEndpointType.Token || DPoPTransaction.ProvenKey(context.Transaction) is not { } key)
        {
            return ValueTask.CompletedTask;
        }
        context.AccessTokenPrincipal?.SetClaim(Claims.Confirmation, Confirmation(key));
        if (context.IssuedTokenType == TokenTypeIdentifiers.AccessToken)
        {
            context.IssuedTokenPrincipal?.SetClaim(Claims.Confirmation, Confirmation(key));
        }
        // A public client proves nothing else when it refreshes; a confidential one authenticates.
        if (context.Request is { ClientSecret: null, ClientAssertion: null })
        {
            context.RefreshTokenPrincipal?.SetClaim(Claims.Confirmation, Confirmation(key));
        }
        return ValueTask.CompletedTask;
    }

    private static JsonObject Confirmation(string key) => new() { ["jkt"] = key };
}

/// <summary>A token response for a bound access token says so: <c>token_type</c> <c>DPoP</c> (RFC 9449 §5).</summary>
internal sealed class ReportDPoPTokenType : IOpenIddictServerHandler<ProcessSignInContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Singleton<ProcessSignInContext, ReportDPoPTokenType>(
        HandlerDescriptors.After(OpenIddictServerHandlers.AttachSignInParameters.Descriptor, 400));

    public ValueTask HandleAsync(ProcessSignInContext context)
    {
        var bound = context.AccessTokenPrincipal ?? (context.IssuedTokenType == TokenTypeIdentifiers.AccessToken ? context.IssuedTokenPrincipal : null);
        if (context.EndpointType == OpenIddictServerEndpointType.Token && bound is not null
            && DPoPProofs.BoundThumbprint(bound.GetClaim(Claims.Confirmation)) is not null)
        {
            context.Response.TokenType = DPoPScheme.TokenType;
        }
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// Introspection of a bound token reports <c>token_type</c> <c>DPoP</c> beside its <c>cnf</c>
/// (which OpenIddict reports, leaving the type out).
/// </summary>
internal sealed class ReportDPoPTokenTypeInIntrospection : IOpenIddictServerHandler<HandleIntrospectionRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Singleton<HandleIntrospectionRequestContext, ReportDPoPTokenTypeInIntrospection>(
        HandlerDescriptors.After(OpenIddictServerHandlers.Introspection.AttachMetadataClaims.Descriptor, 400));

    public ValueTask HandleAsync(HandleIntrospectionRequestContext context)
    {
        if (context.GenericTokenPrincipal is { } principal && DPoPProofs.BoundThumbprint(principal.GetClaim(Claims.Confirmation)) is not null)
        {
            context.TokenType = DPoPScheme.TokenType;
        }
        return ValueTask.CompletedTask;
    }
}

/// <summary>Discovery names the algorithms a DPoP proof may use (RFC 9449 §5.1).</summary>
internal sealed class AdvertiseDPoP : IOpenIddictServerHandler<HandleConfigurationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Singleton<HandleConfigurationRequestContext, AdvertiseDPoP>(
        HandlerDescriptors.After(OpenIddictServerHandlers.Discovery.AttachEndpoints.Descriptor, 400));

    public ValueTask HandleAsync(HandleConfigurationRequestContext context)
    {
        context.Metadata["dpop_signing_alg_values_supported"] = new OpenIddictParameter([.. DPoPScheme.SigningAlgorithms]);
        return ValueTask.CompletedTask;
    }
}

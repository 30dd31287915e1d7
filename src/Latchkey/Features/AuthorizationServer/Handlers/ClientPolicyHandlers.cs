using Latchkey.Common;
using Latchkey.Features.AuthorizationServer.Apps;
using Latchkey.Features.AuthorizationServer.Stores;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Latchkey.Features.AuthorizationServer.Handlers;

// What an app may do: nothing once disabled, only with its own tokens, never more scope than granted.

/// <summary>
/// A client whose <c>client_id</c> is the URL of its metadata document is fetched and stored (or
/// refreshed) before OpenIddict looks it up, at every endpoint that names a client; a document
/// that cannot be used makes the request <c>invalid_client</c>, saying why.
/// </summary>
internal sealed class ResolveClientMetadataDocument(ClientMetadataDocuments documents) : IOpenIddictServerHandler<ProcessAuthenticationContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Scoped<ProcessAuthenticationContext, ResolveClientMetadataDocument>(
        HandlerDescriptors.Before(OpenIddictServerHandlers.ValidateClientId.Descriptor));

    public async ValueTask HandleAsync(ProcessAuthenticationContext context)
    {
        if (context.Request?.ClientId is { } clientId && ClientMetadataDocuments.IsDocumentUrl(clientId)
            && await documents.EnsureCurrentAsync(clientId, context.CancellationToken) is { } problem)
        {
            context.Reject(Errors.InvalidClient, problem);
        }
    }
}

/// <summary>A disabled app cannot authenticate, start a flow, redeem or refresh anything.</summary>
internal sealed class RejectDisabledClients(OAuthApplicationManager applications) : IOpenIddictServerHandler<ProcessAuthenticationContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Scoped<ProcessAuthenticationContext, RejectDisabledClients>(
        HandlerDescriptors.After(OpenIddictServerHandlers.ValidateClientId.Descriptor));

    public async ValueTask HandleAsync(ProcessAuthenticationContext context)
    {
        var clientId = context.Request?.ClientId;
        if (string.IsNullOrEmpty(clientId))
        {
            return;
        }
        if (await applications.FindByClientIdAsync(clientId, context.CancellationToken) is { Enabled: false })
        {
            context.Reject(Errors.InvalidClient, "The application is disabled by its owner.");
        }
    }
}

/// <summary>Tokens of a disabled app are invalid everywhere: introspection, refresh, revocation.</summary>
internal sealed class RejectTokensOfDisabledClients(OAuthApplicationManager applications) : IOpenIddictServerHandler<ValidateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Scoped<ValidateTokenContext, RejectTokensOfDisabledClients>(
        HandlerDescriptors.After(OpenIddictServerHandlers.Protection.ValidateAuthorizationEntry.Descriptor));

    public async ValueTask HandleAsync(ValidateTokenContext context)
    {
        if (context.Principal is null)
        {
            return;
        }
        foreach (var presenter in context.Principal.GetPresenters())
        {
            if (await applications.FindByClientIdAsync(presenter, context.CancellationToken) is { Enabled: false })
            {
                context.Reject(Errors.InvalidToken, "The token's application is disabled.");
                return;
            }
        }
    }
}

/// <summary>
/// An app may introspect or revoke only tokens issued to it (it is their presenter) or meant for
/// it (it is their audience). OpenIddict also lets any client inspect tokens that name no audience.
/// </summary>
internal sealed class RequireTokenOwnership :
    IOpenIddictServerHandler<ValidateIntrospectionRequestContext>,
    IOpenIddictServerHandler<ValidateRevocationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor IntrospectionDescriptor { get; } = HandlerDescriptors.Singleton<ValidateIntrospectionRequestContext, RequireTokenOwnership>(
        HandlerDescriptors.After(OpenIddictServerHandlers.Introspection.ValidateAuthorizedParty.Descriptor));

    public static OpenIddictServerHandlerDescriptor RevocationDescriptor { get; } = HandlerDescriptors.Singleton<ValidateRevocationRequestContext, RequireTokenOwnership>(
        HandlerDescriptors.After(OpenIddictServerHandlers.Revocation.ValidateAuthorizedParty.Descriptor));

    public ValueTask HandleAsync(ValidateIntrospectionRequestContext context)
    {
        if (!Owns(context.GenericTokenPrincipal, context.ClientId))
        {
            context.Reject(Errors.InvalidToken, "The token was not issued to this client.");
        }
        return ValueTask.CompletedTask;
    }

    public ValueTask HandleAsync(ValidateRevocationRequestContext context)
    {
        if (!Owns(context.GenericTokenPrincipal, context.ClientId))
        {
            context.Reject(Errors.InvalidToken, "The token was not issued to this client.");
        }
        return ValueTask.CompletedTask;
    }

    private static bool Owns(System.Security.Claims.ClaimsPrincipal? token, string? clientId) =>
        token is null || (clientId is not null && (token.HasPresenter(clientId) || token.HasAudience(clientId)));
}

/// <summary>The owning client sees the token's scopes in introspection answers (OpenIddict shows them only to audiences).</summary>
internal sealed class AttachScopesForOwner : IOpenIddictServerHandler<HandleIntrospectionRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Singleton<HandleIntrospectionRequestContext, AttachScopesForOwner>(
        HandlerDescriptors.After(OpenIddictServerHandlers.Introspection.AttachApplicationClaims.Descriptor));

    public ValueTask HandleAsync(HandleIntrospectionRequestContext context)
    {
        if (context.GenericTokenPrincipal is { } token && context.Request.ClientId is { } clientId && token.HasPresenter(clientId))
        {
            context.Scopes.UnionWith(token.GetScopes());
        }
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// A refresh asking for more than was granted is <c>invalid_scope</c> (RFC 6749 §5.2: the scope
/// "exceeds the scope granted by the resource owner"); OpenIddict would answer invalid_grant.
/// </summary>
internal sealed class RejectRefreshScopeEscalation : IOpenIddictServerHandler<ValidateTokenRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Singleton<ValidateTokenRequestContext, RejectRefreshScopeEscalation>(
        HandlerDescriptors.Before(OpenIddictServerHandlers.Exchange.ValidateGrantedScopes.Descriptor));

    public ValueTask HandleAsync(ValidateTokenRequestContext context)
    {
        if (context.Request.IsRefreshTokenGrantType() && !string.IsNullOrEmpty(context.Request.Scope) && context.RefreshTokenPrincipal is { } granted)
        {
            var allowed = granted.GetScopes();
            var extra = context.Request.GetScopes().Where(scope => !allowed.Contains(scope)).ToList();
            if (extra.Count > 0)
            {
                context.Reject(Errors.InvalidScope, $"The refresh asks for scopes that were never granted: {InputEcho.Quote(string.Join(' ', extra))}.");
            }
        }
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// A scope the app is not registered for is <c>invalid_scope</c> (RFC 6749 §4.1.2.1, §5.2), where
/// OpenIddict answers <c>invalid_request</c>. Runs just before OpenIddict's own permission check,
/// at the authorization, pushed authorization, device authorization and token endpoints.
/// </summary>
internal sealed class RejectScopesNotPermitted<TContext>(OAuthApplicationManager applications) : IOpenIddictServerHandler<TContext>
    where TContext : BaseValidatingContext
{
    public static OpenIddictServerHandlerDescriptor Descriptor(OpenIddictServerHandlerDescriptor builtInCheck) =>
        HandlerDescriptors.Scoped<TContext, RejectScopesNotPermitted<TContext>>(HandlerDescriptors.Before(builtInCheck, 1));

    public async ValueTask HandleAsync(TContext context)
    {
        if (context.Transaction.Request is not { ClientId: { Length: > 0 } clientId } request
            || await applications.FindByClientIdAsync(clientId, context.CancellationToken) is not { } application)
        {
            return;
        }
        foreach (var scope in request.GetScopes())
        {
            if (scope is not (OpenIddictConstants.Scopes.OpenId or OpenIddictConstants.Scopes.OfflineAccess)
                && !await applications.HasPermissionAsync(application, Permissions.Prefixes.Scope + scope, context.CancellationToken))
            {
                context.Reject(Errors.InvalidScope, $"This app is not registered for the scope {InputEcho.Quote(scope)}.");
                return;
            }
        }
    }
}

/// <summary>
/// A public client asking for <c>client_credentials</c> is <c>unauthorized_client</c> (RFC 6749
/// §5.2: it may not use this grant), not a request that lacks a secret.
/// </summary>
internal sealed class RejectClientCredentialsOfPublicClients(OAuthApplicationManager applications) : IOpenIddictServerHandler<ValidateTokenRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Scoped<ValidateTokenRequestContext, RejectClientCredentialsOfPublicClients>(
        HandlerDescriptors.Before(OpenIddictServerHandlers.Exchange.ValidateClientCredentialsParameters.Descriptor, 1));

    public async ValueTask HandleAsync(ValidateTokenRequestContext context)
    {
        if (context.Request.IsClientCredentialsGrantType() && context.Request.ClientId is { Length: > 0 } clientId
            && await applications.FindByClientIdAsync(clientId, context.CancellationToken) is { } application
            && await applications.HasClientTypeAsync(application, ClientTypes.Public, context.CancellationToken))
        {
            context.Reject(Errors.UnauthorizedClient, "A public client cannot use the client_credentials grant: it has no secret to prove who it is.");
        }
    }
}

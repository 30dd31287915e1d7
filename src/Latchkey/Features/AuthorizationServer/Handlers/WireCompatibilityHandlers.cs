using System.Collections.Immutable;
using Latchkey.Features.AuthorizationServer.Grants;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

using OidcScopes = OpenIddict.Abstractions.OpenIddictConstants.Scopes;

namespace Latchkey.Features.AuthorizationServer.Handlers;

// Answers in both shapes clients expect, and discovery that names every endpoint.

/// <summary>
/// Token responses carry both shapes: RFC 6749 (<c>expires_in</c>, space-separated <c>scope</c>)
/// and the reference system's (<c>access_token_expires_at</c>, <c>refresh_token_expires_at</c>,
/// <c>scopes</c> array).
/// </summary>
internal sealed class AttachReferenceTokenResponseFields(TimeProvider time, IOptions<AuthorizationServerOptions> options) : IOpenIddictServerHandler<ApplyTokenResponseContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Singleton<ApplyTokenResponseContext, AttachReferenceTokenResponseFields>(
        HandlerDescriptors.After(OpenIddictServerHandlers.Exchange.NormalizeErrorResponse.Descriptor));

    public ValueTask HandleAsync(ApplyTokenResponseContext context)
    {
        var response = context.Response;
        if (string.IsNullOrEmpty(response.AccessToken))
        {
            return ValueTask.CompletedTask;
        }
        var now = time.GetUtcNow();
        if (response.ExpiresIn is { } expiresIn)
        {
            response["access_token_expires_at"] = Iso(now.AddSeconds(expiresIn));
        }
        if (!string.IsNullOrEmpty(response.RefreshToken))
        {
            response["refresh_token_expires_at"] = Iso(now.AddDays(options.Value.RefreshTokenLifetimeDays));
        }
        // The array beside the space-separated scope, the same list (ReportGrantedScopes set scope).
        response["scopes"] = new OpenIddictParameter(ScopeArray(response.Scope));
        return ValueTask.CompletedTask;
    }

    internal static ImmutableArray<string?> ScopeArray(string? scope) =>
        (scope ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries).ToImmutableArray<string?>();

    private static string Iso(DateTimeOffset instant) => Common.UtcTimestampConverter.Text(instant);
}

/// <summary>Introspection answers carry the reference system's fields beside RFC 7662's.</summary>
internal sealed class AttachReferenceIntrospectionFields : IOpenIddictServerHandler<ApplyIntrospectionResponseContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Singleton<ApplyIntrospectionResponseContext, AttachReferenceIntrospectionFields>(
        HandlerDescriptors.After(OpenIddictServerHandlers.Introspection.NormalizeErrorResponse.Descriptor));

    public ValueTask HandleAsync(ApplyIntrospectionResponseContext context)
    {
        var response = context.Response;
        if (!string.IsNullOrEmpty(response.Error) || response[Claims.Active] is not { } active || !(bool)active)
        {
            return ValueTask.CompletedTask;
        }
        response["scopes"] = new OpenIddictParameter(AttachReferenceTokenResponseFields.ScopeArray((string?)response[Claims.Scope]));
        var subject = (string?)response[Claims.Subject];
        var clientId = (string?)response[Claims.ClientId];
        // Tokens from client_credentials act for the app itself; they have no user.
        response["user_id"] = subject is not null && subject != clientId ? subject : null;
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// Discovery names the dynamic client registration endpoint (RFC 8414), which Latchkey adds beside
/// OpenIddict, and says whether a client may instead name its metadata document as its client id.
/// </summary>
internal sealed class AttachRegistrationEndpoint(IOptions<AuthorizationServerOptions> options) : IOpenIddictServerHandler<HandleConfigurationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Singleton<HandleConfigurationRequestContext, AttachRegistrationEndpoint>(
        HandlerDescriptors.After(OpenIddictServerHandlers.Discovery.AttachEndpoints.Descriptor));

    public ValueTask HandleAsync(HandleConfigurationRequestContext context)
    {
        if (context.Issuer is { } issuer)
        {
            context.Metadata["registration_endpoint"] = new Uri(issuer, AuthorizationServerSetup.RegisterPath[1..]).AbsoluteUri;
        }
        context.Metadata["client_id_metadata_document_supported"] = options.Value.ClientMetadataDocuments.Enabled;
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// Every token response names the granted scopes, in <c>scope</c> and (by
/// <see cref="AttachReferenceTokenResponseFields"/>) in <c>scopes</c>, the same list: OpenIddict
/// leaves <c>scope</c> out when it equals the request's (RFC 6749 §5.1 allows that), which left
/// client-credentials answers without either. An <c>offline_access</c> Latchkey implied is not reported.
/// </summary>
internal sealed class ReportGrantedScopes : IOpenIddictServerHandler<ProcessSignInContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Singleton<ProcessSignInContext, ReportGrantedScopes>(
        HandlerDescriptors.After(OpenIddictServerHandlers.AttachSignInParameters.Descriptor));

    public ValueTask HandleAsync(ProcessSignInContext context)
    {
        if (context.EndpointType == OpenIddictServerEndpointType.Token && context.Principal is { } principal && !string.IsNullOrEmpty(context.Response.AccessToken))
        {
            var scopes = OAuthPrincipals.ReportedScopes(principal).ToList();
            context.Response.Scope = scopes.Count > 0 ? string.Join(' ', scopes) : null;
        }
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// <c>offline_access</c> is about refresh tokens, not something an access token lets its bearer
/// do: access tokens (and so introspection answers) carry the other scopes only.
/// </summary>
internal sealed class KeepOfflineAccessOutOfAccessTokens : IOpenIddictServerHandler<ProcessSignInContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Singleton<ProcessSignInContext, KeepOfflineAccessOutOfAccessTokens>(
        HandlerDescriptors.After(OpenIddictServerHandlers.PrepareAccessTokenPrincipal.Descriptor));

    public ValueTask HandleAsync(ProcessSignInContext context)
    {
        if (context.AccessTokenPrincipal is { } access && access.HasScope(OidcScopes.OfflineAccess))
        {
            access.SetScopes(access.GetScopes().Remove(OidcScopes.OfflineAccess));
        }
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// Discovery names <c>none</c> among the client authentication methods of the endpoints public
/// clients use (token, revocation, and the device and pushed authorization endpoints), as RFC 8414
/// expects of a server that has public clients; introspection stays confidential clients' only.
/// </summary>
internal sealed class AdvertisePublicClients : IOpenIddictServerHandler<HandleConfigurationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Singleton<HandleConfigurationRequestContext, AdvertisePublicClients>(
        HandlerDescriptors.After(OpenIddictServerHandlers.Discovery.AttachClientAuthenticationMethods.Descriptor));

    public ValueTask HandleAsync(HandleConfigurationRequestContext context)
    {
        foreach (var methods in new[]
        {
            context.TokenEndpointAuthenticationMethods, context.RevocationEndpointAuthenticationMethods,
            context.DeviceAuthorizationEndpointAuthenticationMethods, context.PushedAuthorizationEndpointAuthenticationMethods,
        })
        {
            if (methods.Count > 0)
            {
                methods.Add(ClientAuthenticationMethods.None);
            }
        }
        return ValueTask.CompletedTask;
    }
}

/// <summary>Introspection answers name who acts for the subject of an exchanged token (RFC 8693 §4.1, <c>act</c>).</summary>
internal sealed class AttachActorToIntrospection : IOpenIddictServerHandler<HandleIntrospectionRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Singleton<HandleIntrospectionRequestContext, AttachActorToIntrospection>(
        HandlerDescriptors.After(OpenIddictServerHandlers.Introspection.AttachMetadataClaims.Descriptor));

    public ValueTask HandleAsync(HandleIntrospectionRequestContext context)
    {
        if (context.GenericTokenPrincipal?.GetClaim(Tokens.TokenExchange.ActorClaim) is { Length: > 0 } actor
            && System.Text.Json.Nodes.JsonNode.Parse(actor) is System.Text.Json.Nodes.JsonObject act)
        {
            context.Claims[Tokens.TokenExchange.ActorClaim] = act;
        }
        return ValueTask.CompletedTask;
    }
}

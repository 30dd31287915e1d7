using System.Collections.Immutable;
using System.Globalization;
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
        response["scopes"] = new OpenIddictParameter(PublicScopes(response.Scope));
        return ValueTask.CompletedTask;
    }

    internal static ImmutableArray<string?> PublicScopes(string? scope) =>
        (scope ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(s => s != OidcScopes.OfflineAccess).ToImmutableArray<string?>();

    private static string Iso(DateTimeOffset instant) => instant.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
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
        response["scopes"] = new OpenIddictParameter(AttachReferenceTokenResponseFields.PublicScopes((string?)response[Claims.Scope]));
        var subject = (string?)response[Claims.Subject];
        var clientId = (string?)response[Claims.ClientId];
        // Tokens from client_credentials act for the app itself; they have no user.
        response["user_id"] = subject is not null && subject != clientId ? subject : null;
        return ValueTask.CompletedTask;
    }
}

/// <summary>Discovery names the dynamic client registration endpoint (RFC 8414), which Latchkey adds beside OpenIddict.</summary>
internal sealed class AttachRegistrationEndpoint : IOpenIddictServerHandler<HandleConfigurationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Singleton<HandleConfigurationRequestContext, AttachRegistrationEndpoint>(
        HandlerDescriptors.After(OpenIddictServerHandlers.Discovery.AttachEndpoints.Descriptor));

    public ValueTask HandleAsync(HandleConfigurationRequestContext context)
    {
        if (context.Issuer is { } issuer)
        {
            context.Metadata["registration_endpoint"] = new Uri(issuer, AuthorizationServerSetup.RegisterPath[1..]).AbsoluteUri;
        }
        return ValueTask.CompletedTask;
    }
}

using System.Collections.Immutable;
using System.Globalization;
using System.Text.Json;
using Latchkey.Common;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using Microsoft.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

using OidcScopes = OpenIddict.Abstractions.OpenIddictConstants.Scopes;

namespace Latchkey.Features.AuthorizationServer;

/// <summary>
/// Takes the place of OpenIddict's <c>CreateTokenEntry</c>. For access and refresh tokens stored
/// by reference, the entry is only described here (with a time-ordered id the token's payload
/// names) and inserted once, complete, by <see cref="AttachPrefixedReferenceIdentifier"/>: one
/// write per token instead of an insert followed by an update. Other tokens (codes) are created
/// at once, as OpenIddict does.
/// </summary>
internal sealed class CreateTokenEntryOnce(IOpenIddictApplicationManager applications, IOpenIddictTokenManager tokens) : IOpenIddictServerHandler<GenerateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<GenerateTokenContext>()
        .AddFilter<OpenIddictServerHandlerFilters.RequireDegradedModeDisabled>()
        .AddFilter<OpenIddictServerHandlerFilters.RequireTokenStorageEnabled>()
        .AddFilter<OpenIddictServerHandlerFilters.RequireTokenEntryCreated>()
        .UseScopedHandler<CreateTokenEntryOnce>()
        .SetOrder(OpenIddictServerHandlers.Protection.CreateTokenEntry.Descriptor.Order)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public async ValueTask HandleAsync(GenerateTokenContext context)
    {
        var descriptor = new OpenIddictTokenDescriptor
        {
            AuthorizationId = context.Principal.GetAuthorizationId(),
            CreationDate = context.Principal.GetCreationDate(),
            ExpirationDate = context.Principal.GetExpirationDate(),
            Principal = context.Principal,
            Type = context.TokenType,
            Status = context.TokenType == TokenTypeIdentifiers.Private.DeviceCode ? Statuses.Inactive : Statuses.Valid,
            Subject = context.TokenType is TokenTypeIdentifiers.Private.DeviceCode or TokenTypeIdentifiers.Private.UserCode
                ? null
                : context.Principal.GetClaim(Claims.Subject),
        };
        if (!string.IsNullOrEmpty(context.ClientId))
        {
            var application = await applications.FindByClientIdAsync(context.ClientId, context.CancellationToken)
                ?? throw new InvalidOperationException("The client application of the token does not exist.");
            descriptor.ApplicationId = await applications.GetIdAsync(application, context.CancellationToken);
        }

        if (context.IsReferenceToken && TokenFormats.ForType(context.TokenType) is not null)
        {
            var id = Guid.CreateVersion7().ToString();
            context.Principal.SetTokenId(id);
            context.Transaction.SetProperty(PendingTokenEntry.Key(context.TokenType), new PendingTokenEntry(id, descriptor));
            return;
        }

        var entry = await tokens.CreateAsync(descriptor, context.CancellationToken)
            ?? throw new InvalidOperationException("The token entry could not be created.");
        context.Principal.SetTokenId(await tokens.GetIdAsync(entry, context.CancellationToken));
    }
}

/// <summary>A token entry described but not yet stored; see <see cref="CreateTokenEntryOnce"/>.</summary>
internal sealed record PendingTokenEntry(string Id, OpenIddictTokenDescriptor Descriptor)
{
    public static string Key(string? tokenType) => "latchkey.pending_token_entry:" + tokenType;
}

/// <summary>
/// Replaces OpenIddict's random reference identifiers for access and refresh tokens with
/// Latchkey's prefixed, checksummed format. Runs just before OpenIddict's own
/// <c>AttachTokenPayload</c> and does its work, so that step is skipped for these tokens: the
/// entry described by <see cref="CreateTokenEntryOnce"/> is inserted here, complete. The token
/// manager stores only the SHA-256 hash of the identifier.
/// </summary>
internal sealed class AttachPrefixedReferenceIdentifier(IOpenIddictTokenManager tokens, TimeProvider time) : IOpenIddictServerHandler<GenerateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<GenerateTokenContext>()
        .AddFilter<OpenIddictServerHandlerFilters.RequireDegradedModeDisabled>()
        .AddFilter<OpenIddictServerHandlerFilters.RequireTokenStorageEnabled>()
        .AddFilter<OpenIddictServerHandlerFilters.RequireTokenPayloadPersisted>()
        .UseScopedHandler<AttachPrefixedReferenceIdentifier>()
        .SetOrder(OpenIddictServerHandlers.Protection.AttachTokenPayload.Descriptor.Order - 500)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public async ValueTask HandleAsync(GenerateTokenContext context)
    {
        var format = TokenFormats.ForType(context.TokenType);
        if (format is null || !context.IsReferenceToken
            || context.Transaction.GetProperty<PendingTokenEntry>(PendingTokenEntry.Key(context.TokenType)) is not { } pending)
        {
            return;
        }
        context.Transaction.SetProperty<PendingTokenEntry>(PendingTokenEntry.Key(context.TokenType), null);

        var descriptor = pending.Descriptor;
        descriptor.Payload = context.Token;
        descriptor.Principal = context.Principal;
        descriptor.ReferenceId = TokenFormats.New(format, time.GetUtcNow());
        // Kept beside the encrypted payload so that resource checks need no decryption.
        descriptor.Properties[TokenFormats.ScopesProperty] = JsonSerializer.SerializeToElement(context.Principal.GetScopes());
        descriptor.Properties[TokenFormats.AudiencesProperty] = JsonSerializer.SerializeToElement(context.Principal.GetAudiences());
        var entry = new OAuthToken { Id = pending.Id };
        await tokens.PopulateAsync(entry, descriptor, context.CancellationToken);
        await tokens.CreateAsync(entry, context.CancellationToken);

        context.Token = descriptor.ReferenceId;
        context.PersistTokenPayload = false;
    }
}

/// <summary>Refuses a token with Latchkey's prefix but a bad length or checksum before any database look-up.</summary>
internal sealed class RejectMalformedPrefixedTokens : IOpenIddictServerHandler<ValidateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
        .UseSingletonHandler<RejectMalformedPrefixedTokens>()
        .SetOrder(OpenIddictServerHandlers.Protection.ValidateReferenceTokenIdentifier.Descriptor.Order - 500)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public ValueTask HandleAsync(ValidateTokenContext context)
    {
        if (context.Token is { } token && TokenFormats.HasLatchkeyPrefix(token) && !TokenFormats.IsWellFormed(token))
        {
            context.Reject(Errors.InvalidToken, "The token is malformed.");
        }
        return ValueTask.CompletedTask;
    }
}

/// <summary>A disabled app cannot authenticate, start a flow, redeem or refresh anything.</summary>
internal sealed class RejectDisabledClients(OAuthApplicationManager applications) : IOpenIddictServerHandler<ProcessAuthenticationContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessAuthenticationContext>()
        .UseScopedHandler<RejectDisabledClients>()
        .SetOrder(OpenIddictServerHandlers.ValidateClientId.Descriptor.Order + 500)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

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
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
        .UseScopedHandler<RejectTokensOfDisabledClients>()
        .SetOrder(OpenIddictServerHandlers.Protection.ValidateAuthorizationEntry.Descriptor.Order + 500)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

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
/// Token, introspection and revocation requests may be form-encoded (RFC 6749) or JSON (the
/// reference system's shape). Takes the place of OpenIddict's form-only extraction.
/// </summary>
internal sealed class ExtractFormOrJsonRequest<TContext> : IOpenIddictServerHandler<TContext>
    where TContext : BaseValidatingContext
{
    public static OpenIddictServerHandlerDescriptor Descriptor(int order) => OpenIddictServerHandlerDescriptor.CreateBuilder<TContext>()
        .AddFilter<OpenIddictServerAspNetCoreHandlerFilters.RequireHttpRequest>()
        .UseSingletonHandler<ExtractFormOrJsonRequest<TContext>>()
        .SetOrder(order)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public async ValueTask HandleAsync(TContext context)
    {
        var request = context.Transaction.GetHttpRequest() ?? throw new InvalidOperationException("No HTTP request.");
        if (!HttpMethods.IsPost(request.Method))
        {
            context.Reject(Errors.InvalidRequest, "Use POST.");
            return;
        }
        // Parsed, not prefix-matched: a repeated Content-Type header arrives joined ("a, b") and is neither.
        var contentType = Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(request.ContentType, out var mediaType)
            ? mediaType.MediaType.Value ?? ""
            : "";
        if (contentType.Equals("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase))
        {
            if (await RequestForms.TryReadAsync(request, context.CancellationToken) is { } form)
            {
                context.Transaction.Request = new OpenIddictRequest(form);
            }
            else
            {
                context.Reject(Errors.InvalidRequest, RequestForms.UnreadableDescription);
            }
            return;
        }
        if (!contentType.Equals("application/json", StringComparison.OrdinalIgnoreCase))
        {
            context.Reject(Errors.InvalidRequest, "Send the parameters form-encoded (application/x-www-form-urlencoded) or as a JSON object (application/json).");
            return;
        }

        try
        {
            using var document = await JsonDocument.ParseAsync(request.Body, cancellationToken: context.CancellationToken);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                context.Reject(Errors.InvalidRequest, "The JSON body must be an object of parameters.");
                return;
            }
            var parameters = new List<KeyValuePair<string, StringValues>>();
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Value.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
                {
                    context.Reject(Errors.InvalidRequest, $"The parameter {InputEcho.Quote(property.Name)} must be a string.");
                    return;
                }
                if (property.Value.GetString() is { } value && value.Contains('\0'))
                {
                    context.Reject(Errors.InvalidRequest, $"The parameter {InputEcho.Quote(property.Name)} contains a NUL character.");
                    return;
                }
                parameters.Add(new(property.Name, property.Value.GetString()));
            }
            context.Transaction.Request = new OpenIddictRequest(parameters);
        }
        catch (JsonException)
        {
            context.Reject(Errors.InvalidRequest, "The JSON body is malformed.");
        }
    }
}

/// <summary>
/// Reading a body that is not a valid form (an escaped NUL, a multipart body without a boundary)
/// throws, which would be a 500; here it is the client's <c>invalid_request</c>. The failure is
/// remembered on the request, since the body cannot be read twice.
/// </summary>
internal static class RequestForms
{
    public const string UnreadableDescription = "The form body cannot be read: it is not valid form encoding (check escapes and the content type).";
    private const string UnreadableItem = "latchkey.unreadable-form";

    public static async Task<IFormCollection?> TryReadAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (request.HttpContext.Items.ContainsKey(UnreadableItem))
        {
            return null;
        }
        try
        {
            return await request.ReadFormAsync(cancellationToken);
        }
        catch (Exception exception) when (exception is InvalidDataException || exception is IOException and not BadHttpRequestException)
        {
            // BadHttpRequestException (too large, client gone) keeps its own status through the exception handler.
            request.HttpContext.Items[UnreadableItem] = true;
            return null;
        }
    }
}

/// <summary>
/// Authorization and userinfo requests may be form posts, which OpenIddict reads itself; this runs
/// first, so that a form it cannot read (or a query with a NUL) is an OAuth error rather than an
/// exception. A form read here is kept on the request, and OpenIddict's extraction uses it.
/// </summary>
internal sealed class RejectUnreadableForm<TContext> : IOpenIddictServerHandler<TContext>
    where TContext : BaseValidatingContext
{
    public static OpenIddictServerHandlerDescriptor Descriptor(int order) => OpenIddictServerHandlerDescriptor.CreateBuilder<TContext>()
        .AddFilter<OpenIddictServerAspNetCoreHandlerFilters.RequireHttpRequest>()
        .UseSingletonHandler<RejectUnreadableForm<TContext>>()
        .SetOrder(order)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public async ValueTask HandleAsync(TContext context)
    {
        var request = context.Transaction.GetHttpRequest() ?? throw new InvalidOperationException("No HTTP request.");
        // A content type that is not one media type ("a, b" from a repeated header) would pass
        // OpenIddict's prefix check and then make the form reader throw.
        if (HttpMethods.IsPost(request.Method)
            && ((!string.IsNullOrEmpty(request.ContentType) && !Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(request.ContentType, out _))
                || (request.HasFormContentType && await RequestForms.TryReadAsync(request, context.CancellationToken) is null)))
        {
            context.Reject(Errors.InvalidRequest, RequestForms.UnreadableDescription);
            return;
        }
        // A query string may carry an escaped NUL (forms may not); PostgreSQL cannot compare text with one.
        foreach (var (name, values) in request.Query)
        {
            if (values.Any(v => v?.Contains('\0') == true))
            {
                context.Reject(Errors.InvalidRequest, $"The parameter {InputEcho.Quote(name)} contains a NUL character.");
                return;
            }
        }
    }
}

/// <summary>
/// Token responses carry both shapes: RFC 6749 (<c>expires_in</c>, space-separated <c>scope</c>)
/// and the reference system's (<c>access_token_expires_at</c>, <c>refresh_token_expires_at</c>,
/// <c>scopes</c> array).
/// </summary>
internal sealed class AttachReferenceTokenResponseFields(TimeProvider time, IOptions<AuthorizationServerOptions> options) : IOpenIddictServerHandler<ApplyTokenResponseContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ApplyTokenResponseContext>()
        .UseSingletonHandler<AttachReferenceTokenResponseFields>()
        .SetOrder(OpenIddictServerHandlers.Exchange.NormalizeErrorResponse.Descriptor.Order + 500)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

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
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ApplyIntrospectionResponseContext>()
        .UseSingletonHandler<AttachReferenceIntrospectionFields>()
        .SetOrder(OpenIddictServerHandlers.Introspection.NormalizeErrorResponse.Descriptor.Order + 500)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

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
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<HandleConfigurationRequestContext>()
        .UseSingletonHandler<AttachRegistrationEndpoint>()
        .SetOrder(OpenIddictServerHandlers.Discovery.AttachEndpoints.Descriptor.Order + 500)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public ValueTask HandleAsync(HandleConfigurationRequestContext context)
    {
        if (context.Issuer is { } issuer)
        {
            context.Metadata["registration_endpoint"] = new Uri(issuer, AuthorizationServerSetup.RegisterPath[1..]).AbsoluteUri;
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
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenRequestContext>()
        .UseSingletonHandler<RejectRefreshScopeEscalation>()
        .SetOrder(OpenIddictServerHandlers.Exchange.ValidateGrantedScopes.Descriptor.Order - 500)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

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
/// An app may introspect or revoke only tokens issued to it (it is their presenter) or meant for
/// it (it is their audience). OpenIddict also lets any client inspect tokens that name no audience.
/// </summary>
internal sealed class RequireTokenOwnership :
    IOpenIddictServerHandler<ValidateIntrospectionRequestContext>,
    IOpenIddictServerHandler<ValidateRevocationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor IntrospectionDescriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateIntrospectionRequestContext>()
        .UseSingletonHandler<RequireTokenOwnership>()
        .SetOrder(OpenIddictServerHandlers.Introspection.ValidateAuthorizedParty.Descriptor.Order + 500)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public static OpenIddictServerHandlerDescriptor RevocationDescriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateRevocationRequestContext>()
        .UseSingletonHandler<RequireTokenOwnership>()
        .SetOrder(OpenIddictServerHandlers.Revocation.ValidateAuthorizedParty.Descriptor.Order + 500)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

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
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<HandleIntrospectionRequestContext>()
        .UseSingletonHandler<AttachScopesForOwner>()
        .SetOrder(OpenIddictServerHandlers.Introspection.AttachApplicationClaims.Descriptor.Order + 500)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

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
internal sealed class RecordIssuedTokens(OAuthApplicationManager applications, SecurityEvents.SecurityEventLog securityEvents) : IOpenIddictServerHandler<ProcessSignInContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessSignInContext>()
        .UseScopedHandler<RecordIssuedTokens>()
        .SetOrder(OpenIddictServerHandlers.AttachSignInParameters.Descriptor.Order + 500)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public async ValueTask HandleAsync(ProcessSignInContext context)
    {
        if (context.EndpointType != OpenIddictServerEndpointType.Token || context.AccessTokenPrincipal is not { } access)
        {
            return;
        }
        var clientId = context.Request.ClientId;
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
        securityEvents.Record(account, SecurityEvents.SecurityEventTypes.TokenIssued, access.GetTokenId(), clientId, detail);
    }
}

/// <summary>Records <c>token_revoked</c> for a token an app revoked at the revocation endpoint (RFC 7009).</summary>
internal sealed class RecordRevokedTokens(OAuthApplicationManager applications, SecurityEvents.SecurityEventLog securityEvents) : IOpenIddictServerHandler<HandleRevocationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<HandleRevocationRequestContext>()
        .UseScopedHandler<RecordRevokedTokens>()
        .SetOrder(OpenIddictServerHandlers.Revocation.RevokeToken.Descriptor.Order + 500)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public async ValueTask HandleAsync(HandleRevocationRequestContext context)
    {
        if (context.GenericTokenPrincipal is not { } token)
        {
            return;
        }
        var clientId = context.Request.ClientId;
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
    internal const string Key = "latchkey.presented_grant_token";

    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
        .UseSingletonHandler<NotePresentedGrantToken>()
        .SetOrder(OpenIddictServerHandlers.Protection.ValidateTokenEntry.Descriptor.Order - 500)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public ValueTask HandleAsync(ValidateTokenContext context)
    {
        if (context.EndpointType == OpenIddictServerEndpointType.Token && context.Principal is { } principal
            && principal.GetTokenType() is TokenTypeIdentifiers.RefreshToken or TokenTypeIdentifiers.Private.AuthorizationCode)
        {
            context.Transaction.SetProperty(Key, new PresentedGrantToken(
                principal.GetClaim(Claims.Subject), principal.GetPresenters().FirstOrDefault(), principal.GetTokenId(),
                principal.GetAuthorizationId(), principal.GetTokenType() == TokenTypeIdentifiers.Private.AuthorizationCode));
        }
        return ValueTask.CompletedTask;
    }
}

internal sealed record PresentedGrantToken(string? Subject, string? Presenter, string? TokenId, string? AuthorizationId, bool IsCode);

/// <summary>
/// OpenIddict revokes a grant's whole token chain when a redeemed code or refresh token comes back
/// (RFC 6749 §10.5, OAuth 2.1 §4.3.1), then answers with the error URI of <see cref="CodeReuseError"/>
/// or <see cref="RefreshTokenReuseError"/>. That answer is recorded as <c>token_revoked</c> for the
/// account <see cref="NotePresentedGrantToken"/> noted.
/// </summary>
internal sealed class RecordReuseRevocation(OAuthApplicationManager applications, SecurityEvents.SecurityEventLog securityEvents) : IOpenIddictServerHandler<ApplyTokenResponseContext>
{
    internal const string CodeReuseError = "https://documentation.openiddict.com/errors/ID2010";
    internal const string RefreshTokenReuseError = "https://documentation.openiddict.com/errors/ID2012";

    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ApplyTokenResponseContext>()
        .UseScopedHandler<RecordReuseRevocation>()
        .SetOrder(OpenIddictServerHandlers.Exchange.NormalizeErrorResponse.Descriptor.Order + 600)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public async ValueTask HandleAsync(ApplyTokenResponseContext context)
    {
        if (context.Response.ErrorUri is not (CodeReuseError or RefreshTokenReuseError)
            || context.Transaction.GetProperty<PresentedGrantToken>(NotePresentedGrantToken.Key) is not { } presented)
        {
            return;
        }
        var account = await TokenAccounts.AccountOfAsync(presented.Subject, presented.Presenter, applications, context.CancellationToken);
        if (account is not null)
        {
            securityEvents.Record(account, SecurityEvents.SecurityEventTypes.TokenRevoked, presented.AuthorizationId, presented.Presenter,
                $"{(presented.IsCode ? "authorization code" : "refresh token")} {presented.TokenId} was used twice: every token of the grant was revoked");
        }
    }
}

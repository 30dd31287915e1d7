using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Latchkey.Common;
using Latchkey.Features.AuthorizationServer.Stores;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Latchkey.Features.AuthorizationServer.Apps;

/// <summary>RFC 7591 client metadata, as a registering client sends it.</summary>
public sealed class ClientRegistrationRequest
{
    [JsonPropertyName("redirect_uris")] public string[]? RedirectUris { get; set; }
    [JsonPropertyName("client_name")] public string? ClientName { get; set; }
    [JsonPropertyName("client_uri")] public string? ClientUri { get; set; }
    [JsonPropertyName("logo_uri")] public string? LogoUri { get; set; }
    [JsonPropertyName("token_endpoint_auth_method")] public string? TokenEndpointAuthMethod { get; set; }
    [JsonPropertyName("grant_types")] public string[]? GrantTypes { get; set; }
    [JsonPropertyName("response_types")] public string[]? ResponseTypes { get; set; }
    [JsonPropertyName("scope")] public string? Scope { get; set; }
    [JsonPropertyName("contacts")] public string[]? Contacts { get; set; }
    [JsonPropertyName("software_id")] public string? SoftwareId { get; set; }
    [JsonPropertyName("software_version")] public string? SoftwareVersion { get; set; }
    [JsonPropertyName("application_type")] public string? ApplicationType { get; set; }
    [JsonPropertyName("tos_uri")] public string? TosUri { get; set; }
    [JsonPropertyName("policy_uri")] public string? PolicyUri { get; set; }
    [JsonPropertyName("require_pushed_authorization_requests")] public bool? RequirePushedAuthorizationRequests { get; set; }

    /// <summary>Other metadata is accepted and ignored, as RFC 7591 §2 asks.</summary>
    [JsonExtensionData] public Dictionary<string, JsonElement>? Other { get; set; }
}

/// <summary>
/// Dynamic client registration (RFC 7591), so that MCP clients and other tools can register
/// themselves. Public clients (token_endpoint_auth_method "none") with loopback, private-use or
/// https redirect URIs may register freely when the setting allows; confidential ones need an
/// initial access token configured by the operator. Without such a token a client gets only the
/// <see cref="AnonymousRegistrationScopes"/>; with or without one, its name may not imitate the
/// platform's and no displayed field may hide or reorder text.
/// </summary>
public static class ClientRegistrationEndpoints
{
    /// <summary>The registration access token a registered client manages itself with (RFC 7592), shown once.</summary>
    public static readonly OpaqueSecretFormat RegistrationAccessTokenFormat = new("lk_reg_");

    public static WebApplication MapClientRegistrationEndpoints(this WebApplication app)
    {
        app.MapPost(AuthorizationServerSetup.RegisterPath, RegisterAsync)
            .WithTags("OAuth")
            .WithSummary("Dynamic client registration (RFC 7591)")
            .AllowAnonymous();
        var manage = app.MapGroup(AuthorizationServerSetup.RegisterPath + "/{clientId}").WithTags("OAuth").AllowAnonymous();
        manage.MapGet("/", ReadAsync).WithSummary("A registered client reads its registration (RFC 7592)");
        manage.MapPut("/", UpdateAsync).WithSummary("A registered client changes its registration (RFC 7592)");
        manage.MapDelete("/", DeleteAsync).WithSummary("A registered client deregisters itself (RFC 7592)");
        return app;
    }

    private static async Task<IResult> RegisterAsync(
        HttpContext context, OAuthAppService apps, AnonymousRegistrationScopes anonymousScopes, IOptions<AuthorizationServerOptions> options, TimeProvider time)
    {
        var (request, unreadable) = await ReadMetadataAsync(context);
        if (request is null)
        {
            return unreadable!;
        }

        var operatorApproved = HasInitialAccessToken(context, options.Value);
        var method = request.TokenEndpointAuthMethod ?? ClientAuthenticationMethods.ClientSecretBasic;
        var confidential = method is ClientAuthenticationMethods.ClientSecretBasic or ClientAuthenticationMethods.ClientSecretPost;
        if (!confidential && method != ClientAuthenticationMethods.None)
        {
            return Error("invalid_client_metadata", "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post.");
        }
        if (confidential && !operatorApproved && options.Value.AllowPublicClientRegistration && IsNativeApp(request))
        {
            // A native app cannot keep a secret (RFC 8252 §8.5), and RFC 7591 §3.2.1 lets the server
            // replace requested metadata: it is registered as the public client it is (MCP SDKs ask for a secret).
            method = ClientAuthenticationMethods.None;
            confidential = false;
        }
        if (confidential && !operatorApproved)
        {
            return Results.Json(new RegistrationError("invalid_token",
                    "Registering a confidential client needs an initial access token as 'Authorization: Bearer <token>'. Public clients register with token_endpoint_auth_method \"none\"."),
                statusCode: StatusCodes.Status401Unauthorized);
        }
        if (!confidential && !options.Value.AllowPublicClientRegistration)
        {
            return Results.Json(new RegistrationError("access_denied", "This server does not allow public clients to register themselves."),
                statusCode: StatusCodes.Status403Forbidden);
        }
        var grants = request.GrantTypes ?? AppGrantTypes.Default(confidential);
        if (AppGrantTypes.Problem(grants, confidential) is { } grantProblem)
        {
            return Error("invalid_client_metadata", grantProblem);
        }
        if (!operatorApproved && grants.Contains(GrantTypes.TokenExchange))
        {
            // Exchanging tokens acts for users across resources: only for clients the operator vouched for.
            return Error("invalid_client_metadata",
                "A client that registers itself may not use token exchange; register with an initial access token from the operator.");
        }
        if (request.ResponseTypes?.Any(r => r != ResponseTypes.Code) == true)
        {
            return Error("invalid_client_metadata", "Only the 'code' response type is supported.");
        }
        if (RedirectOrDisplayProblem(request) is { } refused)
        {
            return Error(refused.Error, refused.Description);
        }

        var scopes = (request.Scope ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (operatorApproved)
        {
            // The operator vouched for this client: without a requested scope it may ask for the
            // whole catalog; the user still decides on the consent page.
            scopes = scopes.Length > 0 ? scopes : apps.CatalogScopeNames();
        }
        else if (scopes.Length == 0)
        {
            scopes = [.. anonymousScopes.Allowed];
        }
        else if (scopes.FirstOrDefault(s => !anonymousScopes.Permits(s)) is { } outside)
        {
            // Refused rather than narrowed (RFC 7591 §3.2.1 would allow either): a client that
            // silently got less would find out only at the authorization request, with the user
            // watching; this answer names what it may have, and registering again is cheap.
            return Error("invalid_client_metadata",
                $"A client that registers itself may ask only for the scopes {string.Join(' ', anonymousScopes.Allowed)}; " +
                $"{InputEcho.Quote(outside)} is not one of them. Leave out 'scope' to get all of these, or register with an initial access token from the operator.");
        }

        // An absent name gets a placeholder; a name that is given must follow the rules, even when it shows nothing.
        var (created, errors) = await apps.CreateAsync(ownerId: null, new OAuthAppRequest(
            string.IsNullOrEmpty(request.ClientName) ? "Unnamed client" : request.ClientName,
            null,
            Uri.TryCreate(request.ClientUri, UriKind.Absolute, out _) ? request.ClientUri : null,
            request.RedirectUris,
            scopes,
            confidential,
            grants,
            request.RequirePushedAuthorizationRequests ?? false), context.RequestAborted);
        if (created is null)
        {
            var (field, messages) = errors.First();
            return Error(field == "redirect_uris" ? "invalid_redirect_uri" : "invalid_client_metadata", string.Join(" ", messages));
        }

        // RFC 7592: the client manages its registration with this token; only its hash is kept.
        var registrationToken = RegistrationAccessTokenFormat.Generate();
        created.Application.RegistrationAccessTokenHash = SecretHash.Compute(registrationToken);
        await apps.SaveAsync(created.Application, context.RequestAborted);
        return Metadata(context, apps.View(created.Application), method, created.ClientSecret, registrationToken, StatusCodes.Status201Created);
    }

    /// <summary>RFC 7592 §2.1: the client's current metadata (never its secret, which only its hash is kept of).</summary>
    private static async Task<IResult> ReadAsync(string clientId, HttpContext context, OAuthAppService apps, OAuthApplicationManager applications)
    {
        var app = await AuthenticateRegistrationAsync(context, clientId, applications);
        return app is null ? InvalidRegistrationToken() : Metadata(context, apps.View(app), MethodOf(apps.View(app)), null, null, StatusCodes.Status200OK);
    }

    /// <summary>
    /// RFC 7592 §2.2: replaces the client's metadata with the body. A client may narrow its scopes
    /// and grant types, or keep them, but never widen them: that needs a new registration, with the
    /// same checks as the first.
    /// </summary>
    private static async Task<IResult> UpdateAsync(string clientId, HttpContext context, OAuthAppService apps, OAuthApplicationManager applications)
    {
        var app = await AuthenticateRegistrationAsync(context, clientId, applications);
        if (app is null)
        {
            return InvalidRegistrationToken();
        }
        var (request, problem) = await ReadMetadataAsync(context);
        if (request is null)
        {
            return problem!;
        }
        if (request.Other?.TryGetValue("client_id", out var named) != true || named.ValueKind != JsonValueKind.String || named.GetString() != clientId)
        {
            return Error("invalid_client_metadata", "The body must name this client's client_id (RFC 7592 §2.2).");
        }
        var current = apps.View(app);
        var scopes = (request.Scope ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries) is { Length: > 0 } asked ? asked : [.. current.Scopes];
        var grants = request.GrantTypes ?? [.. current.GrantTypes];
        if (scopes.FirstOrDefault(s => !current.Scopes.Contains(s)) is { } widerScope)
        {
            return Error("invalid_client_metadata", $"The scope {InputEcho.Quote(widerScope)} is not registered for this client; a client may narrow its scopes, not widen them. Register again for more.");
        }
        if (grants.FirstOrDefault(g => !current.GrantTypes.Contains(g)) is { } widerGrant)
        {
            return Error("invalid_client_metadata", $"The grant type {InputEcho.Quote(widerGrant)} is not registered for this client; register again for it.");
        }
        if (RedirectOrDisplayProblem(request) is { } refused)
        {
            return Error(refused.Error, refused.Description);
        }
        var errors = await apps.UpdateAsync(app, new OAuthAppRequest(
            string.IsNullOrEmpty(request.ClientName) ? "Unnamed client" : request.ClientName,
            null,
            Uri.TryCreate(request.ClientUri, UriKind.Absolute, out _) ? request.ClientUri : null,
            request.RedirectUris ?? [],
            scopes,
            null,
            grants,
            request.RequirePushedAuthorizationRequests ?? false), context.RequestAborted);
        if (errors.Count > 0)
        {
            var (field, messages) = errors.First();
            return Error(field == "redirect_uris" ? "invalid_redirect_uri" : "invalid_client_metadata", string.Join(" ", messages));
        }
        var view = apps.View(app);
        return Metadata(context, view, MethodOf(view), null, null, StatusCodes.Status200OK);
    }

    /// <summary>RFC 7592 §2.3: the client deregisters; its grants and tokens go with it.</summary>
    private static async Task<IResult> DeleteAsync(string clientId, HttpContext context, OAuthAppService apps, OAuthApplicationManager applications)
    {
        var app = await AuthenticateRegistrationAsync(context, clientId, applications);
        if (app is null)
        {
            return InvalidRegistrationToken();
        }
        await apps.DeleteAsync(app, context.RequestAborted);
        return Results.NoContent();
    }

    /// <summary>
    /// The client whose registration access token the request carries, or null: a missing or wrong
    /// token and an unknown client look the same (RFC 7592 §3: 401, revealing nothing).
    /// </summary>
    private static async Task<OAuthApplication?> AuthenticateRegistrationAsync(HttpContext context, string clientId, OAuthApplicationManager applications)
    {
        var header = context.Request.Headers[HeaderNames.Authorization].ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || clientId.Length > 200)
        {
            return null;
        }
        var presented = header[7..].Trim();
        if (!RegistrationAccessTokenFormat.IsWellFormed(presented)
            || await applications.FindByClientIdAsync(clientId, context.RequestAborted) is not { RegistrationAccessTokenHash: { } stored } app)
        {
            return null;
        }
        return CryptographicOperations.FixedTimeEquals(SecretHash.Compute(presented), stored) ? app : null;
    }

    private static IResult InvalidRegistrationToken()
    {
        // RFC 6750 §3 through RFC 7592 §2: the client learns to send a valid registration access token.
        return Results.Json(new RegistrationError("invalid_token", "Send this client's registration access token as 'Authorization: Bearer <token>'."),
            statusCode: StatusCodes.Status401Unauthorized);
    }

    private static string MethodOf(OAuthAppView view) =>
        view.ClientType == ClientTypes.Confidential ? ClientAuthenticationMethods.ClientSecretBasic : ClientAuthenticationMethods.None;

    /// <summary>The registration response (RFC 7591 §3.2.1, RFC 7592 §3): absent values are omitted, not null.</summary>
    private static IResult Metadata(HttpContext context, OAuthAppView view, string method, string? clientSecret, string? registrationToken, int status)
    {
        var metadata = new Dictionary<string, object?>
        {
            ["client_id"] = view.ClientId,
            ["client_secret"] = clientSecret,
            ["client_id_issued_at"] = view.CreatedAt.ToUnixTimeSeconds(),
            ["client_secret_expires_at"] = clientSecret is null ? null : 0,
            ["client_name"] = view.Name,
            ["client_uri"] = view.HomepageUrl,
            ["redirect_uris"] = view.RedirectUris,
            ["grant_types"] = view.GrantTypes,
            ["response_types"] = view.GrantTypes.Contains(GrantTypes.AuthorizationCode) ? new[] { ResponseTypes.Code } : [],
            ["require_pushed_authorization_requests"] = view.RequirePushedAuthorizationRequests ? true : null,
            ["token_endpoint_auth_method"] = method,
            ["scope"] = string.Join(' ', view.Scopes),
            ["registration_access_token"] = registrationToken,
            ["registration_client_uri"] = $"{ServerAddress.Base(context)}{AuthorizationServerSetup.RegisterPath}/{Uri.EscapeDataString(view.ClientId)}",
        };
        return Results.Json(metadata.Where(m => m.Value is not null).ToDictionary(), statusCode: status);
    }

    private static async Task<(ClientRegistrationRequest? Request, IResult? Problem)> ReadMetadataAsync(HttpContext context)
    {
        if (context.Request.ContentType?.StartsWith("application/json", StringComparison.OrdinalIgnoreCase) != true)
        {
            return (null, Error("invalid_client_metadata", "Send the client metadata as a JSON object with 'Content-Type: application/json'."));
        }
        try
        {
            var request = await JsonSerializer.DeserializeAsync<ClientRegistrationRequest>(context.Request.Body, cancellationToken: context.RequestAborted);
            return request is null ? (null, Error("invalid_client_metadata", "The body must be a JSON object.")) : (request, null);
        }
        catch (JsonException exception)
        {
            // Where, not what: the exception's own message may quote the body.
            return (null, Error("invalid_client_metadata",
                $"The body is not valid client metadata at {InputEcho.Quote(exception.Path ?? "$")} (line {exception.LineNumber + 1}, byte {exception.BytePositionInLine + 1}): " +
                "send a JSON object with the value types RFC 7591 defines."));
        }
    }

    /// <summary>Only loopback http or private-use-scheme redirect URIs, and no client credentials grant: an app on the user's device.</summary>
    private static bool IsNativeApp(ClientRegistrationRequest request) =>
        request.RedirectUris is { Length: > 0 } uris
        && request.GrantTypes?.Contains(GrantTypes.ClientCredentials) != true
        && uris.All(OAuthAppService.IsNativeRedirect);

    /// <summary>
    /// A redirect URI Latchkey would not send codes to, or displayed text that hides or reorders
    /// characters, as an RFC 7591 error code and description; null when there is neither.
    /// </summary>
    internal static (string Error, string Description)? RedirectOrDisplayProblem(ClientRegistrationRequest request)
    {
        foreach (var uri in request.RedirectUris ?? [])
        {
            if (OAuthAppService.RedirectUriProblem(uri) is { } problem)
            {
                return ("invalid_redirect_uri", problem);
            }
        }
        foreach (var (field, value) in DisplayedFields(request))
        {
            if (DisplayedText.Problem(field, value) is { } problem)
            {
                return ("invalid_client_metadata", problem);
            }
        }
        return null;
    }

    /// <summary>The metadata people may be shown. Those not stored are checked too: a client that hides text in them is not one to register.</summary>
    private static (string Field, string? Value)[] DisplayedFields(ClientRegistrationRequest request) =>
    [
        ("client_name", request.ClientName), ("client_uri", request.ClientUri), ("logo_uri", request.LogoUri),
        ("tos_uri", request.TosUri), ("policy_uri", request.PolicyUri),
    ];

    private static bool HasInitialAccessToken(HttpContext context, AuthorizationServerOptions options)
    {
        var header = context.Request.Headers[HeaderNames.Authorization].ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        var presented = SecretHash.Compute(header[7..].Trim());
        var match = false;
        foreach (var configured in options.InitialAccessTokens)
        {
            // Compare every configured token, in constant time, so timing tells nothing.
            match |= CryptographicOperations.FixedTimeEquals(presented, SecretHash.Compute(configured));
        }
        return match;
    }

    private static IResult Error(string error, string description) =>
        Results.Json(new RegistrationError(error, description), statusCode: StatusCodes.Status400BadRequest);

    private sealed record RegistrationError(
        [property: JsonPropertyName("error")] string Error,
        [property: JsonPropertyName("error_description")] string ErrorDescription);
}

using System.Security.Claims;
using System.Text.Encodings.Web;
using Latchkey.Common;
using Latchkey.Features.ApiKeys;
using Latchkey.Features.Telemetry;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace Latchkey.Features.ExternalApi;

/// <summary>
/// Checks access tokens issued by Latchkey's authorization server. The external API's
/// authentication handler calls it for every bearer that is not an API key, and for every
/// <c>DPoP</c> token (RFC 9449).
/// </summary>
public interface IAccessTokenValidator
{
    /// <summary>
    /// Who the token's caller is, or why not. A token bound to a DPoP key is valid only when
    /// <paramref name="sentWithDPoP"/> and the request's DPoP proof is signed by that key.
    /// </summary>
    ValueTask<CallerValidation> ValidateAsync(string token, bool sentWithDPoP, HttpRequest request, CancellationToken cancellationToken);
}

/// <summary>
/// Who is calling, as established from an API key or access token, or why not (with the RFC 6750
/// or RFC 9449 error code). An access token's audiences are the resources (RFC 8707) it was issued
/// for; none means Latchkey's own APIs.
/// </summary>
public readonly record struct CallerValidation(string? UserId, IReadOnlyList<string> Scopes, string? CredentialId, string? ClientId, string? Error,
    IReadOnlyList<string>? Audiences = null, string ErrorCode = CallerValidation.InvalidToken)
{
    public const string InvalidToken = "invalid_token";

    public bool Succeeded => Error is null;

    public static CallerValidation Fail(string error, string errorCode = InvalidToken) => new(null, [], null, null, error, null, errorCode);
}

public static class ExternalApiClaims
{
    public const string Scope = "scope";
    public const string CredentialType = "credential_type";
    public const string CredentialId = "credential_id";
    public const string ClientId = "client_id";
    public const string Audience = "aud";
    public const string ApiKey = "api_key";
    public const string AccessToken = "access_token";

    /// <summary>What endpoints that act for a user say to a token an app obtained for itself.</summary>
    public const string NoUserDetail = "This token was issued to an application acting for itself (client credentials); it has no user.";
}

/// <summary>
/// One authentication handler for <c>/external-api</c>: <c>X-API-Key</c>,
/// <c>Authorization: Bearer</c> carrying either an API key (told apart by prefix) or an access
/// token, or <c>Authorization: DPoP</c> carrying a DPoP-bound access token beside its proof.
/// </summary>
public sealed class ExternalApiAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory loggerFactory,
    UrlEncoder encoder,
    ApiKeyService apiKeys,
    IServiceProvider services)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, loggerFactory, encoder)
{
    public const string SchemeName = "ExternalApi";
    public const string ApiKeyHeader = "X-API-Key";
    private const string ErrorItem = "latchkey.auth_error";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var apiKeyHeader = Request.Headers[ApiKeyHeader];
        var authorization = Request.Headers.Authorization;
        if (apiKeyHeader.Count == 0 && authorization.Count == 0)
        {
            return AuthenticateResult.NoResult();
        }
        if (apiKeyHeader.Count + authorization.Count > 1)
        {
            return Fail(CallerValidation.Fail("Send exactly one credential: one X-API-Key header or one Authorization header."));
        }

        CallerValidation caller;
        if (apiKeyHeader.Count == 1)
        {
            caller = await CheckApiKeyAsync(apiKeyHeader.ToString());
        }
        else
        {
            var value = authorization.ToString();
            var dpop = ResourceChallenges.SentWithDPoP(Request);
            var scheme = dpop ? DPoPScheme.Name : "Bearer";
            if ((!dpop && !value.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) || value.Length <= scheme.Length + 1)
            {
                return Fail(CallerValidation.Fail("The Authorization header must be 'Bearer <token>', or 'DPoP <token>' with a DPoP proof."));
            }
            var token = value[(scheme.Length + 1)..].Trim();
            caller = ApiKeyService.Format.HasPrefix(token)
                ? dpop ? CallerValidation.Fail("API keys are sent as 'Bearer <key>' or in X-API-Key, not with the DPoP scheme.") : await CheckApiKeyAsync(token)
                : await CheckAccessTokenAsync(token, dpop);
        }

        if (!caller.Succeeded)
        {
            return Fail(caller);
        }

        var claims = new List<Claim>(caller.Scopes.Count + 4)
        {
            new(ExternalApiClaims.CredentialType, caller.ClientId is null ? ExternalApiClaims.ApiKey : ExternalApiClaims.AccessToken),
        };
        // Tokens an app obtained for itself (client credentials) act for no user.
        if (caller.UserId is not null)
        {
            claims.Add(new Claim(ClaimTypes.NameIdentifier, caller.UserId));
        }
        if (caller.CredentialId is not null)
        {
            claims.Add(new Claim(ExternalApiClaims.CredentialId, caller.CredentialId));
        }
        if (!string.IsNullOrEmpty(caller.ClientId))
        {
            claims.Add(new Claim(ExternalApiClaims.ClientId, caller.ClientId));
        }
        TraceTags.Set(TraceTags.UserId, caller.UserId);
        TraceTags.Client(caller.ClientId);
        foreach (var scope in caller.Scopes)
        {
            claims.Add(new Claim(ExternalApiClaims.Scope, scope));
        }
        foreach (var audience in caller.Audiences ?? [])
        {
            claims.Add(new Claim(ExternalApiClaims.Audience, audience));
        }
        var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName));
        return AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName));
    }

    private async Task<CallerValidation> CheckApiKeyAsync(string presented)
    {
        var check = await apiKeys.AuthenticateAsync(presented.Trim(), Context.RequestAborted);
        return check.Succeeded
            ? new CallerValidation(check.UserId, check.Scopes, check.KeyId, null, null)
            : CallerValidation.Fail(check.FailureDescription);
    }

    private async Task<CallerValidation> CheckAccessTokenAsync(string token, bool sentWithDPoP)
    {
        // Until an authorization server is registered, no bearer token but an API key is valid.
        var validator = services.GetService<IAccessTokenValidator>();
        return validator is null
            ? CallerValidation.Fail("The access token is not valid.")
            : await validator.ValidateAsync(token, sentWithDPoP, Request, Context.RequestAborted);
    }

    /// <summary>Why the credential of this request was refused (its description and RFC 6750 or RFC 9449 error code), if it was.</summary>
    public static (string Description, string ErrorCode)? FailureOf(HttpContext context) =>
        context.Items[ErrorItem] is CallerValidation { Error: { } error } failure ? (error, failure.ErrorCode) : null;

    private AuthenticateResult Fail(CallerValidation failure)
    {
        Context.Items[ErrorItem] = failure;
        return AuthenticateResult.Fail(failure.Error!);
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        // RFC 6750 §3: no error code when no credentials were sent, invalid_token (or RFC 9449's
        // invalid_dpop_proof) otherwise, on the scheme the credential came with.
        var failure = FailureOf(Context);
        var error = failure?.Description;
        ResourceChallenges.Append(Context, "realm=\"latchkey\"", failure?.ErrorCode, error);
        Response.Headers.Append(HeaderNames.WWWAuthenticate, $"ApiKey realm=\"latchkey\", header=\"{ApiKeyHeader}\"");
        if (Context.GetEndpoint()?.Metadata.GetMetadata<IErrorShape>() is { } shape)
        {
            // An API with an error shape of its own (the agent API's { error, message }).
            return shape.WriteAsync(Context, StatusCodes.Status401Unauthorized, "unauthorized",
                error ?? $"Send your API key in the {ApiKeyHeader} header.");
        }
        return Problems.WriteAsync(Context, StatusCodes.Status401Unauthorized,
            error ?? $"Authenticate with an API key in the {ApiKeyHeader} header or an access token as 'Authorization: Bearer <token>'.",
            failure is null ? null : new Dictionary<string, object?> { ["error"] = failure.Value.ErrorCode });
    }
}

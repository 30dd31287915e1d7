using System.Security.Claims;
using Latchkey.Common;
using Latchkey.Features.ExternalApi;
using Microsoft.AspNetCore.Authentication;

namespace Latchkey.Features.Mcp.Gateway;

/// <summary>
/// Who may call a gateway (RFC 6750, RFC 9728 and the MCP authorization specification): the
/// owner's API key, or a Latchkey access token with <see cref="RequiredScope"/> issued for this
/// gateway's URL. A refusal carries the challenge an MCP client follows to get such a token.
/// </summary>
internal static class GatewayAuthentication
{
    public const string RequiredScope = "USE_TOOLS";

    /// <summary>RFC 9728 §3.1: the metadata of the resource <c>https://host/p</c> is at <c>https://host/.well-known/oauth-protected-resource/p</c>.</summary>
    public static string ResourceMetadataUrl(string baseUrl, string gatewayUrl) =>
        baseUrl + "/.well-known/oauth-protected-resource" + gatewayUrl[baseUrl.Length..];

    /// <summary>The caller if it may use this gateway, or how to refuse it (RFC 6750, RFC 9728 and the MCP authorization spec).</summary>
    public static async Task<(ClaimsPrincipal? Caller, Func<HttpContext, Task>? Refusal)> AuthenticateAsync(
        HttpContext context, string metadata, string gatewayUrl)
    {
        var result = await context.AuthenticateAsync(ExternalApiAuthenticationHandler.SchemeName);
        if (!result.Succeeded)
        {
            var failure = ExternalApiAuthenticationHandler.FailureOf(context);
            return (null, c => Challenge(c, StatusCodes.Status401Unauthorized, metadata, failure?.ErrorCode,
                failure?.Description ?? "Authenticate with an API key (X-API-Key) or a Latchkey access token for this gateway (Authorization: Bearer, or DPoP with a proof)."));
        }
        var caller = result.Principal!;
        if (caller.FindFirstValue(ExternalApiClaims.CredentialType) == ExternalApiClaims.AccessToken)
        {
            // RFC 8707: the token must have been issued for this gateway, not passed on from elsewhere.
            if (!caller.FindAll(ExternalApiClaims.Audience).Any(a => ServerAddress.SameResource(a.Value, gatewayUrl)))
            {
                return (null, c => Challenge(c, StatusCodes.Status401Unauthorized, metadata, "invalid_token",
                    $"The access token was not issued for this gateway; request one with resource={gatewayUrl}."));
            }
            if (!caller.HasClaim(ExternalApiClaims.Scope, RequiredScope))
            {
                return (null, c => Challenge(c, StatusCodes.Status403Forbidden, metadata, "insufficient_scope",
                    $"Calling tools needs the scope {RequiredScope}, which the access token was not granted."));
            }
        }
        if (caller.FindFirstValue(ClaimTypes.NameIdentifier) is null)
        {
            return (null, c => Problems.WriteAsync(c, StatusCodes.Status403Forbidden, ExternalApiClaims.NoUserDetail));
        }
        return (caller, null);
    }

    /// <summary>
    /// A tool whose policy names a scope the caller lacks: 403 <c>insufficient_scope</c> naming only
    /// that scope, which an MCP client follows to ask the person for it (step-up).
    /// </summary>
    public static Task InsufficientScopeAsync(HttpContext context, string metadataUrl, string tool, string scope)
    {
        var description = $"The tool '{tool}' needs the scope {scope}, which the credential was not granted.";
        ResourceChallenges.Append(context, $"resource_metadata=\"{metadataUrl}\"", "insufficient_scope", description, scope);
        return Problems.WriteAsync(context, StatusCodes.Status403Forbidden, description,
            new Dictionary<string, object?> { ["error"] = "insufficient_scope", ["scope"] = scope });
    }

    private static Task Challenge(HttpContext context, int status, string resourceMetadata, string? error, string description)
    {
        ResourceChallenges.Append(context, $"resource_metadata=\"{resourceMetadata}\", scope=\"{RequiredScope}\"", error, description);
        return Problems.WriteAsync(context, status, description, error is null ? null : new Dictionary<string, object?> { ["error"] = error });
    }
}

using Latchkey.Common;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;

namespace Latchkey.Features.ExternalApi;

/// <summary>The caller's credential must carry this scope.</summary>
public sealed class ScopeRequirement(string scope) : IAuthorizationRequirement
{
    public string Scope { get; } = scope;
}

/// <summary>
/// An access token issued for another resource (RFC 8707 audience), such as one MCP gateway, is
/// not accepted by Latchkey's own APIs. Tokens without an audience, and API keys, are.
/// </summary>
public sealed class OwnAudienceRequirement : IAuthorizationRequirement
{
    public static readonly OwnAudienceRequirement Instance = new();

    public const string Detail = "The access token was issued for another resource (its audience), not for this API.";
}

internal sealed class OwnAudienceRequirementHandler : AuthorizationHandler<OwnAudienceRequirement>
{
    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, OwnAudienceRequirement requirement)
    {
        var audiences = context.User.FindAll(ExternalApiClaims.Audience).ToList();
        if (audiences.Count == 0
            || (context.Resource is HttpContext http && ServerAddress.Base(http) is var own && audiences.Exists(a => ServerAddress.SameResource(a.Value, own))))
        {
            context.Succeed(requirement);
        }
        return Task.CompletedTask;
    }
}

internal sealed class ScopeRequirementHandler : AuthorizationHandler<ScopeRequirement>
{
    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, ScopeRequirement requirement)
    {
        if (context.User.HasClaim(ExternalApiClaims.Scope, requirement.Scope))
        {
            context.Succeed(requirement);
        }
        return Task.CompletedTask;
    }
}

/// <summary>
/// Answers a missing scope per RFC 6750 §3.1: 403 with <c>error="insufficient_scope"</c> and the
/// scope that was needed, in the header and in a problem details body.
/// </summary>
internal sealed class InsufficientScopeResultHandler : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        if (authorizeResult.Forbidden && authorizeResult.AuthorizationFailure is { } failure)
        {
            if (failure.FailedRequirements.OfType<OwnAudienceRequirement>().Any())
            {
                // RFC 6750 §3.1: a token that is not for this resource is an invalid token.
                ResourceChallenges.Append(context, "realm=\"latchkey\"", "invalid_token", OwnAudienceRequirement.Detail);
                return Problems.WriteAsync(context, StatusCodes.Status401Unauthorized, OwnAudienceRequirement.Detail,
                    new Dictionary<string, object?> { ["error"] = "invalid_token" });
            }
            var missing = failure.FailedRequirements.OfType<ScopeRequirement>().Select(r => r.Scope).ToArray();
            if (missing.Length > 0)
            {
                var scopes = string.Join(' ', missing);
                ResourceChallenges.Append(context, "realm=\"latchkey\"", "insufficient_scope", "The credential lacks the required scope", scopes);
                return Problems.WriteAsync(context, StatusCodes.Status403Forbidden,
                    $"This endpoint needs the scope {scopes}, which the credential was not granted.",
                    new Dictionary<string, object?> { ["error"] = "insufficient_scope", ["scope"] = scopes });
            }
        }
        return _default.HandleAsync(next, context, policy, authorizeResult);
    }
}

public static class ScopeAuthorizationExtensions
{
    /// <summary>Callers of this endpoint authenticate through the external API handler and need <paramref name="scope"/>.</summary>
    public static TBuilder RequireScope<TBuilder>(this TBuilder builder, string scope) where TBuilder : IEndpointConventionBuilder =>
        builder.RequireAuthorization(new AuthorizationPolicyBuilder(ExternalApiAuthenticationHandler.SchemeName)
            .RequireAuthenticatedUser()
            .AddRequirements(OwnAudienceRequirement.Instance, new ScopeRequirement(scope))
            .Build());
}

using Latchkey.Common;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.Net.Http.Headers;

namespace Latchkey.Features.ExternalApi;

/// <summary>The caller's credential must carry this scope.</summary>
public sealed class ScopeRequirement(string scope) : IAuthorizationRequirement
{
    public string Scope { get; } = scope;
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
            var missing = failure.FailedRequirements.OfType<ScopeRequirement>().Select(r => r.Scope).ToArray();
            if (missing.Length > 0)
            {
                var scopes = string.Join(' ', missing);
                context.Response.Headers.Append(HeaderNames.WWWAuthenticate,
                    $"Bearer realm=\"latchkey\", error=\"insufficient_scope\", error_description=\"The credential lacks the required scope\", scope=\"{scopes}\"");
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
            .AddRequirements(new ScopeRequirement(scope))
            .Build());
}

using System.Security.Claims;
using Latchkey.Features.ExternalApi;
using Microsoft.AspNetCore.Authorization;

namespace Latchkey.Features.AgentApi;

/// <summary>
/// The agent API: the JSON endpoints agents and their platforms call with an API key (the credential
/// broker under <c>/mcp/oauth</c>, <c>/mcp/providers</c>, <c>/mcp/credentials</c>, and MCP servers
/// under <c>/mcp/servers</c>). One contract for all of them: who may call, how bodies are read,
/// and the <c>{ "error", "message" }</c> shape of every error, 401 included. Features map their
/// endpoints on a group made here.
/// </summary>
public static class AgentApiSetup
{
    /// <summary>The agent API's callers: an API key of the account (its scopes do not matter; the key is the account's).</summary>
    public static readonly AuthorizationPolicy ApiKeyOnly = new AuthorizationPolicyBuilder(ExternalApiAuthenticationHandler.SchemeName)
        .RequireAuthenticatedUser()
        .RequireClaim(ExternalApiClaims.CredentialType, ExternalApiClaims.ApiKey)
        .RequireClaim(ClaimTypes.NameIdentifier)
        .Build();

    /// <summary>A group of agent API endpoints under <paramref name="prefix"/>.</summary>
    public static RouteGroupBuilder MapAgentApi(this IEndpointRouteBuilder endpoints, string prefix, string tag)
    {
        var group = endpoints.MapGroup(prefix).WithTags(tag).RequireAuthorization(ApiKeyOnly);
        group.WithMetadata(AgentErrorShape.Instance);
        group.AddEndpointFilter<AgentApiFilter>();
        group.WithMetadata(new ProducesResponseTypeMetadata(
            StatusCodes.Status401Unauthorized, typeof(AgentErrorBody), [AgentJson.ContentType]));
        return group;
    }

    /// <summary>
    /// For an endpoint outside an agent API group that takes an <see cref="AgentBody{T}"/>: a body
    /// that cannot be read is answered in the agent API's shape.
    /// </summary>
    public static RouteHandlerBuilder ReadsAgentBody(this RouteHandlerBuilder endpoint) => endpoint.AddEndpointFilter<AgentApiFilter>();
}

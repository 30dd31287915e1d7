using System.Security.Claims;
using Latchkey.Common;
using Latchkey.Features.AgentApi;
using Latchkey.Features.Mcp.Approvals;
using Latchkey.Features.Mcp.Gateway;
using Latchkey.Features.Mcp.Policies;
using Latchkey.Features.Mcp.Virtual;
using Latchkey.Storage;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using ModelContextProtocol;
using ModelContextProtocol.Authentication;

namespace Latchkey.Features.Mcp;

public sealed record McpServerList(IReadOnlyList<McpServerView> Servers);

public sealed record ToolCallView(long Id, string Tool, string? CredentialId, string? Caller, string Outcome, int DurationMs, DateTimeOffset At);

public sealed record ToolCallList(string ServerId, IReadOnlyList<ToolCallView> ToolCalls);

/// <summary>
/// MCP servers and tool-to-credential mappings (<c>/mcp/servers</c>, API key), the gateway
/// (<c>/mcp/servers/{id}/mcp</c>, API key or access token for the gateway), and its protected
/// resource metadata (RFC 9728).
/// </summary>
internal static class McpEndpoints
{
    public static void MapMcpEndpoints(this IEndpointRouteBuilder app)
    {
        var servers = app.MapAgentApi("/mcp/servers", "MCP servers");
        app.MapApprovalEndpoints();

        servers.MapPost("/", async (AgentBody<McpServerRequest> body, HttpContext context, ClaimsPrincipal caller, McpServerService service) =>
                (await service.CreateAsync(caller.UserId(), body.Value, context.RequestAborted)).ToCreated(created => McpServerService.View(created, ServerAddress.Base(context))))
            .WithSummary("Register an upstream MCP server (Streamable HTTP); the answer holds its gateway URL");
        servers.MapGet("/", async (HttpContext context, ClaimsPrincipal caller, McpServerService service) =>
        {
            var baseUrl = ServerAddress.Base(context);
            var list = await service.ListAsync(caller.UserId(), context.RequestAborted);
            return AgentResults.Ok(new McpServerList(list.ConvertAll(s => McpServerService.View(s, baseUrl))));
        }).WithSummary("Your MCP servers");
        servers.MapGet("/{id}", async Task<Results<AgentOk<McpServerView>, AgentError>> (string id, HttpContext context, ClaimsPrincipal caller, McpServerService service) =>
                await service.FindAsync(caller.UserId(), id, context.RequestAborted) is { } found
                    ? AgentResults.Ok(McpServerService.View(found, ServerAddress.Base(context)))
                    : NotFound(id))
            .WithSummary("One of your MCP servers with its tool mappings");
        servers.MapPatch("/{id}", async Task<Results<AgentOk<McpServerView>, AgentError>> (string id, AgentBody<McpServerPatch> body, HttpContext context, ClaimsPrincipal caller, McpServerService service) =>
            {
                var found = await service.FindAsync(caller.UserId(), id, context.RequestAborted);
                if (found is null)
                {
                    return NotFound(id);
                }
                var error = await service.UpdateAsync(found, body.Value, context.RequestAborted);
                return error is null ? AgentResults.Ok(McpServerService.View(found, ServerAddress.Base(context))) : error;
            })
            .WithSummary("Change name, url, default_credential_id (null removes it) or default_header");
        servers.MapDelete("/{id}", async Task<Results<NoContent, AgentError>> (string id, ClaimsPrincipal caller, McpServerService service, CancellationToken ct) =>
        {
            var found = await service.FindAsync(caller.UserId(), id, ct);
            if (found is null)
            {
                return NotFound(id);
            }
            await service.DeleteAsync(found, ct);
            return TypedResults.NoContent();
        }).WithSummary("Remove the server, its mappings and its gateway");

        servers.MapGet("/{id}/tools", async Task<Results<AgentOk<ToolList>, AgentError>> (string id, HttpContext context, ClaimsPrincipal caller, McpServerService service, UpstreamTools upstream) =>
        {
            var found = await service.FindAsync(caller.UserId(), id, context.RequestAborted);
            if (found is null)
            {
                return NotFound(id);
            }
            return (await upstream.ListAsync(found, ServerAddress.Base(context), context.RequestAborted)).ToOk();
        }).WithSummary("The upstream's tools (listed live) and the credential each call carries");
        servers.MapPut("/{id}/tools/{tool}/credential", async Task<Results<AgentOk<ToolMappingView>, AgentError>> (string id, string tool, AgentBody<ToolCredentialRequest> body, ClaimsPrincipal caller, McpServerService service, CancellationToken ct) =>
            {
                var found = await service.FindAsync(caller.UserId(), id, ct);
                if (found is null)
                {
                    return NotFound(id);
                }
                return (await service.MapToolAsync(found, tool, body.Value, ct)).ToOk(McpServerService.View);
            })
            .WithSummary("Map one of your credentials to a tool: credential_id, and header (default Authorization: Bearer)");
        servers.MapDelete("/{id}/tools/{tool}/credential", async Task<Results<NoContent, AgentError>> (string id, string tool, ClaimsPrincipal caller, McpServerService service, CancellationToken ct) =>
        {
            var found = await service.FindAsync(caller.UserId(), id, ct);
            if (found is null)
            {
                return NotFound(id);
            }
            return await service.UnmapToolAsync(found, tool, ct)
                ? TypedResults.NoContent()
                : AgentError.NotFound("mapping", $"No credential is mapped to the tool {InputEcho.Quote(tool)}.");
        }).WithSummary("Remove a tool's mapping (calls then carry the server default, if any)");
        servers.MapGet("/{id}/policies", async Task<Results<AgentOk<ToolPolicyList>, AgentError>> (string id, ClaimsPrincipal caller, McpServerService service, CancellationToken ct) =>
                await service.FindAsync(caller.UserId(), id, ct) is { } found ? AgentResults.Ok(ToolPolicyService.List(found)) : NotFound(id))
            .WithSummary("The server's default tool policy and its per-tool policies");
        servers.MapPut("/{id}/tools/{tool}/policy", async Task<Results<AgentOk<ToolPolicyView>, AgentError>> (string id, string tool, AgentBody<ToolPolicyRequest> body, ClaimsPrincipal caller, McpServerService service, ToolPolicyService policies, CancellationToken ct) =>
            {
                var found = await service.FindAsync(caller.UserId(), id, ct);
                if (found is null)
                {
                    return NotFound(id);
                }
                return (await policies.SetAsync(found, tool, body.Value, ct)).ToOk(ToolPolicyService.View);
            })
            .WithSummary("Set the policy of a tool, or of every tool matching a pattern (delete_*): action allow, deny or require_approval; required_scope; argument_rules [{argument, pattern}]");
        servers.MapDelete("/{id}/tools/{tool}/policy", async Task<Results<NoContent, AgentError>> (string id, string tool, ClaimsPrincipal caller, McpServerService service, ToolPolicyService policies, CancellationToken ct) =>
        {
            var found = await service.FindAsync(caller.UserId(), id, ct);
            if (found is null)
            {
                return NotFound(id);
            }
            return await policies.RemoveAsync(found, tool, ct)
                ? TypedResults.NoContent()
                : AgentError.NotFound("policy", $"No policy names the tool {InputEcho.Quote(tool)}.");
        }).WithSummary("Remove a tool's policy (its calls then follow a matching pattern or the server's default)");
        servers.MapGet("/{id}/tool-calls", async Task<Results<AgentOk<ToolCallList>, AgentError>> (string id, int? limit, ClaimsPrincipal caller, McpServerService service, LatchkeyDbContext db, IOptions<McpOptions> options, CancellationToken ct) =>
        {
            if (await service.FindAsync(caller.UserId(), id, ct) is null)
            {
                return NotFound(id);
            }
            var max = options.Value.MaxToolCallsPerPage;
            if (limit is < 1 || limit > max)
            {
                return AgentError.BadRequest($"limit must be between 1 and {max}.");
            }
            var calls = await db.McpToolCalls.AsNoTracking().Where(c => c.ServerId == id)
                .OrderByDescending(c => c.Id).Take(limit ?? 100)
                .Select(c => new ToolCallView(c.Id, c.ToolName, c.CredentialId, c.Caller, c.Outcome, c.DurationMs, c.At))
                .ToListAsync(ct);
            return AgentResults.Ok(new ToolCallList(id, calls));
        }).WithSummary("The audit of tool calls through the gateway, newest first");

        app.MapMethods($"/mcp/servers/{{id}}{McpServerService.GatewayPathSuffix}", [HttpMethods.Post, HttpMethods.Get, HttpMethods.Delete],
                (string id, HttpContext context, McpGateway gateway) => gateway.RelayAsync(context, id))
            .WithTags("MCP gateway")
            .WithSummary("Streamable HTTP MCP endpoint: relays to the upstream, with the mapped credential on each tool call (API key, or an access token with USE_TOOLS for this URL)");

        // RFC 9728 §3.1: the metadata of resource https://host/p lives at https://host/.well-known/oauth-protected-resource/p.
        app.MapGet($"/.well-known/oauth-protected-resource/mcp/servers/{{id}}{McpServerService.GatewayPathSuffix}", (string id, HttpContext context) =>
        {
            if (!McpServerService.CouldBeServerId(id))
            {
                return Results.Problem(statusCode: StatusCodes.Status404NotFound, detail: $"There is no MCP server {InputEcho.Quote(id)}.");
            }
            context.Response.Headers.CacheControl = "public, max-age=3600";
            return Results.Json(ResourceMetadata(context, McpServerService.GatewayUrl(ServerAddress.Base(context), id)), McpJsonUtilities.DefaultOptions);
        }).WithTags("MCP gateway").WithSummary("Protected resource metadata (RFC 9728) of a gateway URL").AllowAnonymous();

        app.MapVirtualServerEndpoints();
    }

    /// <summary>A gateway URL's protected resource metadata: Latchkey as its authorization server, USE_TOOLS, Bearer or DPoP tokens.</summary>
    internal static ProtectedResourceMetadata ResourceMetadata(HttpContext context, string gatewayUrl) => new()
    {
        Resource = gatewayUrl,
        AuthorizationServers = [ServerAddress.Issuer(context)],
        ScopesSupported = [GatewayAuthentication.RequiredScope],
        BearerMethodsSupported = ["header"],
        ResourceName = "Latchkey MCP gateway",
        ResourceDocumentation = ServerAddress.Base(context) + "/docs",
        DpopSigningAlgValuesSupported = [.. DPoPScheme.SigningAlgorithms],
    };

    private static AgentError NotFound(string id) => AgentError.NotFound("server", $"You have no MCP server {InputEcho.Quote(id)}.");
}

using System.Security.Claims;
using Latchkey.Common;
using Latchkey.Features.AgentApi;
using Latchkey.Features.Mcp.Gateway;
using Microsoft.AspNetCore.Http.HttpResults;
using ModelContextProtocol;
using ModelContextProtocol.Authentication;

namespace Latchkey.Features.Mcp.Virtual;

/// <summary>
/// Virtual servers (<c>/mcp/virtual-servers</c>, API key), their gateway
/// (<c>/mcp/virtual-servers/{id}/mcp</c>, API key or access token for it) and its protected
/// resource metadata (RFC 9728).
/// </summary>
internal static class VirtualServerEndpoints
{
    public static void MapVirtualServerEndpoints(this IEndpointRouteBuilder app)
    {
        var virtuals = app.MapAgentApi(VirtualServerService.PathPrefix, "MCP virtual servers");

        virtuals.MapPost("/", async (AgentBody<VirtualServerRequest> body, HttpContext context, ClaimsPrincipal caller, VirtualServerService service) =>
            {
                var created = await service.CreateAsync(caller.UserId(), body.Value, context.RequestAborted);
                var names = await service.ServerNamesAsync(caller.UserId(), context.RequestAborted);
                return created.ToCreated(server => VirtualServerService.View(server, names, ServerAddress.Base(context)));
            })
            .WithSummary("Bundle several of your MCP servers under one gateway URL: name, members [{server_id, prefix}] (prefix defaults to the server's name)");
        virtuals.MapGet("/", async (HttpContext context, ClaimsPrincipal caller, VirtualServerService service) =>
        {
            var names = await service.ServerNamesAsync(caller.UserId(), context.RequestAborted);
            var list = await service.ListAsync(caller.UserId(), context.RequestAborted);
            return AgentResults.Ok(new VirtualServerList(list.ConvertAll(s => VirtualServerService.View(s, names, ServerAddress.Base(context)))));
        }).WithSummary("Your virtual MCP servers");
        virtuals.MapGet("/{id}", async Task<Results<AgentOk<VirtualServerView>, AgentError>> (string id, HttpContext context, ClaimsPrincipal caller, VirtualServerService service) =>
            {
                var found = await service.FindAsync(caller.UserId(), id, context.RequestAborted);
                return found is null
                    ? NotFound(id)
                    : AgentResults.Ok(VirtualServerService.View(found, await service.ServerNamesAsync(caller.UserId(), context.RequestAborted), ServerAddress.Base(context)));
            })
            .WithSummary("One of your virtual MCP servers");
        virtuals.MapPut("/{id}", async Task<Results<AgentOk<VirtualServerView>, AgentError>> (string id, AgentBody<VirtualServerRequest> body, HttpContext context, ClaimsPrincipal caller, VirtualServerService service) =>
            {
                var found = await service.FindAsync(caller.UserId(), id, context.RequestAborted);
                if (found is null)
                {
                    return NotFound(id);
                }
                var names = await service.ServerNamesAsync(caller.UserId(), context.RequestAborted);
                return (await service.ReplaceAsync(found, body.Value, context.RequestAborted)).ToOk(server => VirtualServerService.View(server, names, ServerAddress.Base(context)));
            })
            .WithSummary("Replace the name and members");
        virtuals.MapDelete("/{id}", async Task<Results<NoContent, AgentError>> (string id, ClaimsPrincipal caller, VirtualServerService service, CancellationToken ct) =>
        {
            var found = await service.FindAsync(caller.UserId(), id, ct);
            if (found is null)
            {
                return NotFound(id);
            }
            await service.DeleteAsync(found, ct);
            return TypedResults.NoContent();
        }).WithSummary("Remove the virtual server (its members stay)");

        app.MapMethods($"{VirtualServerService.PathPrefix}/{{id}}{McpServerService.GatewayPathSuffix}", [HttpMethods.Post, HttpMethods.Get, HttpMethods.Delete],
                (string id, HttpContext context, VirtualGateway gateway) => gateway.HandleAsync(context, id))
            .WithTags("MCP gateway")
            .WithSummary("Streamable HTTP MCP endpoint for the tools of several servers, each under its prefix (API key, or an access token with USE_TOOLS for this URL)");

        app.MapGet($"/.well-known/oauth-protected-resource{VirtualServerService.PathPrefix}/{{id}}{McpServerService.GatewayPathSuffix}", (string id, HttpContext context) =>
        {
            if (!McpServerService.CouldBeServerId(id))
            {
                return Results.Problem(statusCode: StatusCodes.Status404NotFound, detail: $"There is no virtual MCP server {InputEcho.Quote(id)}.");
            }
            context.Response.Headers.CacheControl = "public, max-age=3600";
            return Results.Json(McpEndpoints.ResourceMetadata(context, VirtualServerService.GatewayUrl(ServerAddress.Base(context), id)), McpJsonUtilities.DefaultOptions);
        }).WithTags("MCP gateway").WithSummary("Protected resource metadata (RFC 9728) of a virtual server's gateway URL").AllowAnonymous();
    }

    private static AgentError NotFound(string id) => AgentError.NotFound("virtual_server", $"You have no virtual MCP server {InputEcho.Quote(id)}.");
}

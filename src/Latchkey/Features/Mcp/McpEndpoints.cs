using System.Security.Claims;
using System.Text.Json;
using Latchkey.Common;
using Latchkey.Features.AuthorizationServer;
using Latchkey.Features.Broker;
using Latchkey.Storage;
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
public static class McpEndpoints
{
    public static WebApplicationBuilder AddMcp(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<McpOptions>().BindConfiguration(McpOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddScoped<McpServerService>();
        builder.Services.AddScoped<McpGateway>();
        builder.Services.AddScoped<UpstreamTools>();
        builder.Services.AddScoped<IResourceNames, McpResourceNames>();
        builder.Services.AddAuditLog<ToolCallAudit, McpToolCall>();
        builder.Services.AddSnapshotCache<GatewayRoute>(CacheScope.McpServers);
        builder.Services.AddOutboundAddressGuard();
        builder.Services.AddHttpClient(McpGateway.HttpClientName)
            .ConfigurePrimaryHttpMessageHandler(services => services.GetRequiredService<OutboundAddressGuard>()
                .CreateHandler(services.GetRequiredService<IOptions<McpOptions>>().Value.AllowPrivateNetworks))
            // Streams stay open as long as the agent keeps them; the gateway times the wait for headers itself.
            .ConfigureHttpClient(client => client.Timeout = Timeout.InfiniteTimeSpan);
        return builder;
    }

    public static WebApplication MapMcp(this WebApplication app)
    {
        var servers = app.MapGroup("/mcp/servers").WithTags("MCP servers").RequireAuthorization(BrokerEndpoints.ApiKeyOnly).WithMetadata(new BrokerErrorShape());

        servers.MapPost("/", async (HttpRequest request, ClaimsPrincipal caller, McpServerService service) =>
            await BrokerEndpoints.HandleAsync<McpServerRequest, McpServerView>(request, async body =>
            {
                var (created, error) = await service.CreateAsync(caller.UserId(), body, request.HttpContext.RequestAborted);
                return created is null ? (null, error) : (McpServerService.View(created, ServerAddress.Base(request.HttpContext)), null);
            }, StatusCodes.Status201Created))
            .WithSummary("Register an upstream MCP server (Streamable HTTP); the answer holds its gateway URL").Accepts<McpServerRequest>("application/json").Produces<McpServerView>(StatusCodes.Status201Created);
        servers.MapGet("/", async (HttpContext context, ClaimsPrincipal caller, McpServerService service) =>
        {
            var baseUrl = ServerAddress.Base(context);
            var list = await service.ListAsync(caller.UserId(), context.RequestAborted);
            return Results.Json(new McpServerList(list.ConvertAll(s => McpServerService.View(s, baseUrl))), BrokerJson.Options);
        }).WithSummary("Your MCP servers").Produces<McpServerList>();
        servers.MapGet("/{id}", async (string id, HttpContext context, ClaimsPrincipal caller, McpServerService service) =>
            await service.FindAsync(caller.UserId(), id, context.RequestAborted) is { } found
                ? Results.Json(McpServerService.View(found, ServerAddress.Base(context)), BrokerJson.Options)
                : NotFound(id))
            .WithSummary("One of your MCP servers with its tool mappings").Produces<McpServerView>();
        servers.MapPatch("/{id}", async (string id, HttpRequest request, ClaimsPrincipal caller, McpServerService service) =>
            await BrokerEndpoints.HandleAsync<McpServerPatch, McpServerView>(request, async body =>
            {
                var found = await service.FindAsync(caller.UserId(), id, request.HttpContext.RequestAborted);
                if (found is null)
                {
                    return (null, NotFoundError(id));
                }
                var error = await service.UpdateAsync(found, body, request.HttpContext.RequestAborted);
                return error is null ? (McpServerService.View(found, ServerAddress.Base(request.HttpContext)), null) : (null, error);
            }))
            .WithSummary("Change name, url, default_credential_id (null removes it) or default_header").Accepts<McpServerPatch>("application/json").Produces<McpServerView>();
        servers.MapDelete("/{id}", async (string id, ClaimsPrincipal caller, McpServerService service, CancellationToken ct) =>
        {
            var found = await service.FindAsync(caller.UserId(), id, ct);
            if (found is null)
            {
                return NotFound(id);
            }
            await service.DeleteAsync(found, ct);
            return Results.NoContent();
        }).WithSummary("Remove the server, its mappings and its gateway");

        servers.MapGet("/{id}/tools", async (string id, HttpContext context, ClaimsPrincipal caller, McpServerService service, UpstreamTools upstream) =>
        {
            var found = await service.FindAsync(caller.UserId(), id, context.RequestAborted);
            if (found is null)
            {
                return NotFound(id);
            }
            var (tools, error) = await upstream.ListAsync(found, ServerAddress.Base(context), context.RequestAborted);
            return tools is null ? error!.ToResult() : Results.Json(tools, BrokerJson.Options);
        }).WithSummary("The upstream's tools (listed live) and the credential each call carries").Produces<ToolList>();
        servers.MapPut("/{id}/tools/{tool}/credential", async (string id, string tool, HttpRequest request, ClaimsPrincipal caller, McpServerService service) =>
            await BrokerEndpoints.HandleAsync<ToolCredentialRequest, ToolMappingView>(request, async body =>
            {
                var found = await service.FindAsync(caller.UserId(), id, request.HttpContext.RequestAborted);
                if (found is null)
                {
                    return (null, NotFoundError(id));
                }
                var (mapping, error) = await service.MapToolAsync(found, tool, body, request.HttpContext.RequestAborted);
                return mapping is null ? (null, error) : (McpServerService.View(mapping), null);
            }))
            .WithSummary("Map one of your credentials to a tool: credential_id, and header (default Authorization: Bearer)").Accepts<ToolCredentialRequest>("application/json").Produces<ToolMappingView>();
        servers.MapDelete("/{id}/tools/{tool}/credential", async (string id, string tool, ClaimsPrincipal caller, McpServerService service, CancellationToken ct) =>
        {
            var found = await service.FindAsync(caller.UserId(), id, ct);
            if (found is null)
            {
                return NotFound(id);
            }
            return await service.UnmapToolAsync(found, tool, ct)
                ? Results.NoContent()
                : BrokerError.NotFound("mapping", $"No credential is mapped to the tool {InputEcho.Quote(tool)}.").ToResult();
        }).WithSummary("Remove a tool's mapping (calls then carry the server default, if any)");
        servers.MapGet("/{id}/tool-calls", async (string id, int? limit, ClaimsPrincipal caller, McpServerService service, LatchkeyDbContext db, IOptions<McpOptions> options, CancellationToken ct) =>
        {
            if (await service.FindAsync(caller.UserId(), id, ct) is null)
            {
                return NotFound(id);
            }
            var max = options.Value.MaxToolCallsPerPage;
            if (limit is < 1 || limit > max)
            {
                return BrokerError.BadRequest($"limit must be between 1 and {max}.").ToResult();
            }
            var calls = await db.McpToolCalls.AsNoTracking().Where(c => c.ServerId == id)
                .OrderByDescending(c => c.Id).Take(limit ?? 100)
                .Select(c => new ToolCallView(c.Id, c.ToolName, c.CredentialId, c.Caller, c.Outcome, c.DurationMs, c.At))
                .ToListAsync(ct);
            return Results.Json(new ToolCallList(id, calls), BrokerJson.Options);
        }).WithSummary("The audit of tool calls through the gateway, newest first").Produces<ToolCallList>();

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
            var baseUrl = ServerAddress.Base(context);
            var metadata = new ProtectedResourceMetadata
            {
                Resource = McpServerService.GatewayUrl(baseUrl, id),
                AuthorizationServers = [ServerAddress.Issuer(context)],
                ScopesSupported = [McpGateway.RequiredScope],
                BearerMethodsSupported = ["header"],
                ResourceName = "Latchkey MCP gateway",
                ResourceDocumentation = baseUrl + "/docs",
            };
            context.Response.Headers.CacheControl = "public, max-age=3600";
            return Results.Json(metadata, McpJsonUtilities.DefaultOptions);
        }).WithTags("MCP gateway").WithSummary("Protected resource metadata (RFC 9728) of a gateway URL").AllowAnonymous();
        return app;
    }

    private static BrokerError NotFoundError(string id) => BrokerError.NotFound("server", $"You have no MCP server {InputEcho.Quote(id)}.");

    private static IResult NotFound(string id) => NotFoundError(id).ToResult();
}

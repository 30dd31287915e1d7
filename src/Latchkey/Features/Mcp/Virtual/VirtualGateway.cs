using System.Diagnostics;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Latchkey.Common;
using Latchkey.Features.ExternalApi;
using Latchkey.Features.Mcp.Gateway;
using Microsoft.AspNetCore.Http.Features;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;

namespace Latchkey.Features.Mcp.Virtual;

/// <summary>
/// <c>/mcp/virtual-servers/{id}/mcp</c>: one MCP endpoint for the tools of several registered
/// servers. Latchkey answers the session itself (initialize, ping, tools/list merged from every
/// member with its prefix, its policies applied) and relays each tools/call to its member's
/// upstream, through the same path as that member's own gateway (credential, policy, approval,
/// audit). A member's <c>notifications/tools/list_changed</c> reaches the agent's event stream.
/// </summary>
public sealed partial class VirtualGateway(
    VirtualServerService virtuals,
    McpServerService servers,
    McpGateway gateway,
    UpstreamSessions upstreams,
    IHttpClientFactory httpClients,
    ILogger<VirtualGateway> logger)
{
    private static readonly string[] SupportedProtocolVersions = ["2024-11-05", "2025-03-26", "2025-06-18", UpstreamSessions.LatestProtocolVersion];

    public async Task HandleAsync(HttpContext context, string id)
    {
        var started = Stopwatch.GetTimestamp();
        if (!McpServerService.CouldBeServerId(id))
        {
            await Problems.WriteAsync(context, StatusCodes.Status404NotFound, $"There is no virtual MCP server {InputEcho.Quote(id)}.");
            return;
        }
        var baseUrl = ServerAddress.Base(context);
        var gatewayUrl = VirtualServerService.GatewayUrl(baseUrl, id);
        var metadataUrl = GatewayAuthentication.ResourceMetadataUrl(baseUrl, gatewayUrl);
        var (caller, refusal) = await GatewayAuthentication.AuthenticateAsync(context, metadataUrl, gatewayUrl);
        if (caller is null)
        {
            await refusal!(context);
            return;
        }
        var route = await virtuals.RouteAsync(id, context.RequestAborted);
        if (route is null || route.OwnerId != caller.FindFirstValue(ClaimTypes.NameIdentifier))
        {
            await Problems.WriteAsync(context, StatusCodes.Status404NotFound, $"You have no virtual MCP server {InputEcho.Quote(id)}.");
            return;
        }
        var members = new List<(string Prefix, GatewayRoute Route)>();
        foreach (var (prefix, serverId) in route.Members)
        {
            if (await servers.RouteAsync(serverId, context.RequestAborted) is { } member)
            {
                members.Add((prefix, member));
            }
        }
        var callerId = caller.FindFirstValue(ExternalApiClaims.CredentialId) ?? caller.FindFirstValue(ExternalApiClaims.ClientId) ?? "unknown";
        var sessionHeader = context.Request.Headers[McpGateway.SessionHeader].ToString();
        // Per agent (API key or app) and its session: another agent naming the same session id gets sessions of its own. An
        // agent without a session (newer protocol revisions) shares one upstream session per member with its other requests.
        var agentSession = $"{route.Id}:{callerId}:{(sessionHeader.Length > 0 ? sessionHeader : "shared")}";
        var protocolVersion = context.Request.Headers["MCP-Protocol-Version"].ToString() is { Length: > 0 } requested && SupportedProtocolVersions.Contains(requested)
            ? requested
            : UpstreamSessions.LatestProtocolVersion;

        if (HttpMethods.IsGet(context.Request.Method))
        {
            await StreamListChangesAsync(context, members, agentSession, protocolVersion);
            return;
        }
        if (HttpMethods.IsDelete(context.Request.Method))
        {
            foreach (var (_, member) in members)
            {
                upstreams.Forget(member, agentSession);
            }
            context.Response.StatusCode = StatusCodes.Status200OK;
            return;
        }

        var (body, message) = await McpGateway.ReadMessageAsync(context);
        if (message.Unreadable || message.Invalid)
        {
            return;
        }
        if (body.AsSpan().TrimStart((byte)' ').StartsWith("["u8))
        {
            await Problems.WriteAsync(context, StatusCodes.Status400BadRequest, "A virtual MCP server takes one JSON-RPC message per request, not a batch.");
            return;
        }
        if (message.Id is not { } requestId)
        {
            // Notifications (initialized, cancelled) and responses: nothing for the virtual server to do.
            context.Response.StatusCode = StatusCodes.Status202Accepted;
            return;
        }
        switch (message.Method)
        {
            case "initialize":
                await InitializeAsync(context, route, body, requestId);
                return;
            case "ping":
                await AnswerAsync(context, requestId, new JsonObject());
                return;
            case "tools/list":
                await ListToolsAsync(context, members, caller, agentSession, protocolVersion, requestId);
                return;
            case McpGateway.ToolsCall:
                await CallToolAsync(context, route, members, caller, message, body, agentSession, protocolVersion, baseUrl, metadataUrl, started);
                return;
            default:
                await ErrorAsync(context, requestId, McpErrorCode.MethodNotFound, $"A virtual MCP server offers tools only; '{message.Method}' is not one of its methods.");
                return;
        }
    }

    private static async Task InitializeAsync(HttpContext context, VirtualRoute route, byte[] body, RequestId requestId)
    {
        string? requested = null;
        try
        {
            requested = JsonNode.Parse(body)?["params"]?["protocolVersion"]?.GetValue<string>();
        }
        catch (Exception exception) when (exception is JsonException or InvalidOperationException or FormatException)
        {
        }
        var version = requested is not null && SupportedProtocolVersions.Contains(requested) ? requested : UpstreamSessions.LatestProtocolVersion;
        // The session is a name for the agent's upstream sessions (UpstreamSessions), not a credential: every request is authenticated.
        context.Response.Headers[McpGateway.SessionHeader] = "vs_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        await AnswerAsync(context, requestId, new JsonObject
        {
            ["protocolVersion"] = version,
            ["capabilities"] = new JsonObject { ["tools"] = new JsonObject { ["listChanged"] = true } },
            ["serverInfo"] = new JsonObject { ["name"] = route.Name, ["version"] = "1" },
            ["instructions"] = $"The tools of {route.Members.Count} MCP servers, each name led by its server's prefix and '{VirtualServerService.Separator}'.",
        });
    }

    /// <summary>Every member's tools, its policies applied, under its prefix; a member that cannot answer is left out (and logged).</summary>
    private async Task ListToolsAsync(HttpContext context, List<(string Prefix, GatewayRoute Route)> members, ClaimsPrincipal caller,
        string agentSession, string protocolVersion, RequestId requestId)
    {
        var answers = await Task.WhenAll(members.Select(async member =>
            (member.Prefix, member.Route, Answer: await upstreams.RequestAsync(member.Route, agentSession, protocolVersion, "tools/list", context.RequestAborted))));
        var merged = new JsonArray();
        foreach (var (prefix, member, (answer, problem)) in answers)
        {
            if (answer?["result"]?["tools"] is not JsonArray tools)
            {
                LogMemberFailed(logger, member.ServerId, problem ?? "no tool list in its answer");
                continue;
            }
            if (!member.Policies.IsOpen)
            {
                new ToolListFilter(member.Policies, caller).Filter(tools);
            }
            foreach (var tool in tools.ToList())
            {
                if (tool is JsonObject entry && entry["name"] is JsonValue name && name.TryGetValue<string>(out var text))
                {
                    tools.Remove(tool);
                    entry["name"] = prefix + VirtualServerService.Separator + text;
                    merged.Add(entry);
                }
            }
        }
        await AnswerAsync(context, requestId, new JsonObject { ["tools"] = merged });
    }

    private async Task CallToolAsync(HttpContext context, VirtualRoute route, List<(string Prefix, GatewayRoute Route)> members, ClaimsPrincipal caller,
        RelayedMessage message, byte[] body, string agentSession, string protocolVersion, string baseUrl, string metadataUrl, long started)
    {
        if (VirtualServerService.Resolve(route, message.Tool ?? "") is not { } target
            || members.Find(m => m.Route.ServerId == target.ServerId).Route is not { } member)
        {
            await ErrorAsync(context, message.Id!.Value, McpErrorCode.InvalidParams,
                $"This virtual server has no tool '{message.Tool}': tool names are a member's prefix, '{VirtualServerService.Separator}' and the tool's name (tools/list lists them).");
            return;
        }
        // The member sees its own tool name.
        var rewritten = JsonNode.Parse(body)!;
        rewritten["params"]!["name"] = target.Tool;
        var (session, problem) = await upstreams.EnsureAsync(member, agentSession, protocolVersion, context.RequestAborted);
        if (session is null)
        {
            await GatewayRefusals.UpstreamFailedAsync(context, message with { Tool = target.Tool }, problem!, "upstream_unreachable", StatusCodes.Status502BadGateway);
            return;
        }
        await gateway.RelayAsync(context, member, caller, message with { Tool = target.Tool }, Encoding.UTF8.GetBytes(rewritten.ToJsonString()),
            baseUrl, metadataUrl, session, started);
    }

    /// <summary>
    /// The agent's event stream: each member's stream is listened to, and its
    /// <c>notifications/tools/list_changed</c> passed on, until the agent goes away.
    /// </summary>
    private async Task StreamListChangesAsync(HttpContext context, List<(string Prefix, GatewayRoute Route)> members, string agentSession, string protocolVersion)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await context.Response.StartAsync(context.RequestAborted);
        var writes = new SemaphoreSlim(1, 1);
        var listeners = members.Select(member => ListenAsync(context, member.Route, agentSession, protocolVersion, writes)).ToList();
        try
        {
            await Task.WhenAll(listeners.Append(Task.Delay(Timeout.Infinite, context.RequestAborted)));
        }
        catch (OperationCanceledException)
        {
            // The agent closed its stream.
        }
    }

    private async Task ListenAsync(HttpContext context, GatewayRoute member, string agentSession, string protocolVersion, SemaphoreSlim writes)
    {
        var cancellationToken = context.RequestAborted;
        try
        {
            var (session, _) = await upstreams.EnsureAsync(member, agentSession, protocolVersion, cancellationToken);
            if (session is not { Length: > 0 })
            {
                return;
            }
            using var request = new HttpRequestMessage(HttpMethod.Get, member.Upstream);
            request.Headers.TryAddWithoutValidation("Accept", "text/event-stream");
            request.Headers.TryAddWithoutValidation(McpGateway.SessionHeader, session);
            request.Headers.TryAddWithoutValidation("MCP-Protocol-Version", protocolVersion);
            if (await upstreams.AuthorizeAsync(request, member, cancellationToken) is not null)
            {
                return;
            }
            using var response = await httpClients.CreateClient(McpGateway.HttpClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            if (!response.IsSuccessStatusCode || response.Content.Headers.ContentType?.MediaType != "text/event-stream")
            {
                return;
            }
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
            var data = new StringBuilder();
            while (await reader.ReadLineAsync(cancellationToken) is { } line)
            {
                if (line.StartsWith("data:", StringComparison.Ordinal))
                {
                    data.Append(line.AsSpan(5).TrimStart(' '));
                    continue;
                }
                if (line.Length > 0 || data.Length == 0)
                {
                    continue;
                }
                var isListChange = data.ToString().Contains("\"notifications/tools/list_changed\"", StringComparison.Ordinal);
                data.Clear();
                if (!isListChange)
                {
                    continue;
                }
                await writes.WaitAsync(cancellationToken);
                try
                {
                    await context.Response.WriteAsync("event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n", cancellationToken);
                    await context.Response.Body.FlushAsync(cancellationToken);
                }
                finally
                {
                    writes.Release();
                }
            }
        }
        catch (Exception exception) when (exception is HttpRequestException or IOException or OperationCanceledException)
        {
            // The member's stream ended or the agent went away: nothing more to pass on from it.
        }
    }

    private static Task AnswerAsync(HttpContext context, RequestId id, JsonNode result) =>
        GatewayRefusals.WriteJsonRpcAsync(context, new JsonRpcResponse { Id = id, Result = result });

    private static Task ErrorAsync(HttpContext context, RequestId id, McpErrorCode code, string text) =>
        GatewayRefusals.WriteJsonRpcAsync(context, new JsonRpcError { Id = id, Error = new JsonRpcErrorDetail { Code = (int)code, Message = text } });

    [LoggerMessage(Level = LogLevel.Warning, Message = "Virtual MCP server member {ServerId} gave no tool list: {Reason}")]
    private static partial void LogMemberFailed(ILogger logger, string serverId, string reason);
}

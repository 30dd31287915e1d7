using System.Diagnostics;
using System.Net;
using System.Security.Claims;
using Latchkey.Common;
using Latchkey.Features.Broker.Credentials;
using Latchkey.Features.ExternalApi;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using ModelContextProtocol;

namespace Latchkey.Features.Mcp.Gateway;

/// <summary>
/// <c>/mcp/servers/{id}/mcp</c>: relays Streamable HTTP MCP between an agent and the upstream server
/// byte for byte (sessions, notifications, cancellation and server-sent events pass through), and
/// puts a current token of the mapped credential on each tool call. The agent's own credential
/// (API key or Latchkey access token) never goes upstream, and the third-party token never comes back.
/// </summary>
public sealed partial class McpGateway(
    McpServerService servers,
    CredentialService credentials,
    GatewayPolicy policies,
    ToolCallAudit audit,
    IHttpClientFactory httpClients,
    IOptions<McpOptions> options,
    ILogger<McpGateway> logger)
{
    public const string HttpClientName = "latchkey-mcp-upstream";
    internal const string ToolsCall = "tools/call";
    internal const string SessionHeader = "Mcp-Session-Id";

    // What the agent may tell the upstream: the protocol's own headers (Mcp-*, Last-Event-ID), content
    // negotiation and tracing. Everything else (its credentials for Latchkey, cookies, forwarding and
    // client-address headers, hop-by-hop headers) stays here.
    private static readonly HashSet<string> RequestHeadersRelayed = new(StringComparer.OrdinalIgnoreCase)
    {
        "Accept", "Accept-Language", "User-Agent", "Last-Event-ID", "Cache-Control", "traceparent", "tracestate", "baggage",
    };

    // What the upstream may tell the agent: content, caching, the session and retry hints. Not its
    // authentication challenge, cookies, redirects or anything else.
    private static readonly HashSet<string> ResponseHeadersRelayed = new(StringComparer.OrdinalIgnoreCase)
    {
        "Content-Type", "Content-Length", "Content-Encoding", "Content-Language", "Cache-Control", "Expires", "Pragma", "Vary", "ETag",
        "Last-Modified", "Retry-After", "X-Accel-Buffering",
    };

    private static bool IsProtocolHeader(string name) => name.StartsWith("Mcp-", StringComparison.OrdinalIgnoreCase);

    public async Task RelayAsync(HttpContext context, string serverId)
    {
        var started = Stopwatch.GetTimestamp();
        if (!McpServerService.CouldBeServerId(serverId))
        {
            await Problems.WriteAsync(context, StatusCodes.Status404NotFound, $"There is no MCP server {InputEcho.Quote(serverId)}.");
            return;
        }
        var baseUrl = ServerAddress.Base(context);
        var gatewayUrl = McpServerService.GatewayUrl(baseUrl, serverId);

        var metadataUrl = GatewayAuthentication.ResourceMetadataUrl(baseUrl, gatewayUrl);
        var (caller, refusal) = await GatewayAuthentication.AuthenticateAsync(context, metadataUrl, gatewayUrl);
        if (caller is null)
        {
            await refusal!(context);
            return;
        }
        var route = await servers.RouteAsync(serverId, context.RequestAborted);
        if (route is null || route.OwnerId != caller.FindFirstValue(ClaimTypes.NameIdentifier))
        {
            await Problems.WriteAsync(context, StatusCodes.Status404NotFound, $"You have no MCP server {InputEcho.Quote(serverId)}.");
            return;
        }

        byte[] body = [];
        var message = RelayedMessage.None;
        if (HttpMethods.IsPost(context.Request.Method))
        {
            (body, message) = await ReadMessageAsync(context);
            if (message.Unreadable || message.Invalid)
            {
                return;
            }
            if (message.MixedToolCalls)
            {
                await Problems.WriteAsync(context, StatusCodes.Status400BadRequest,
                    "A batch may not carry more than one tools/call; send tool calls one per request.");
                return;
            }
        }
        await RelayAsync(context, route, caller, message, body, baseUrl, metadataUrl, upstreamSession: null, started);
    }

    /// <summary>The POSTed message, or (having answered) why it cannot be relayed: what the gateway cannot read it cannot route to the right credential or audit.</summary>
    internal static async Task<(byte[] Body, RelayedMessage Message)> ReadMessageAsync(HttpContext context)
    {
        var body = await ReadBodyAsync(context.Request);
        var message = RelayedMessage.Read(body);
        if (message.Unreadable || message.Invalid)
        {
            await GatewayRefusals.MalformedAsync(context, message.Unreadable
                ? (McpErrorCode.ParseError, "The body is not a JSON-RPC message (JSON object or array, UTF-8, no duplicate members).")
                : (McpErrorCode.InvalidRequest, "The body is not a JSON-RPC 2.0 request, notification or response (jsonrpc \"2.0\", a string method, a string or number id, object or array params)."));
        }
        return (body, message);
    }

    /// <summary>
    /// Applies the tool's policy, relays the request to <paramref name="route"/>'s upstream with the
    /// right credential, answers the agent and audits a tool call. For a virtual server's member,
    /// <paramref name="upstreamSession"/> is the member's own session ("" for none), in place of the agent's.
    /// </summary>
    internal async Task RelayAsync(HttpContext context, GatewayRoute route, ClaimsPrincipal caller, RelayedMessage message, byte[] body,
        string baseUrl, string metadataUrl, string? upstreamSession, long started)
    {
        var binding = route.For(message.Tool);
        var callerId = caller.FindFirstValue(ExternalApiClaims.CredentialId) ?? caller.FindFirstValue(ExternalApiClaims.ClientId) ?? "unknown";
        // The agent's trace context from the protocol (_meta.traceparent) when no header carries one: into the logs and upstream.
        using var trace = message.TraceParent is { } traceParent && !context.Request.Headers.ContainsKey("traceparent")
            ? StartTrace(traceParent)
            : null;
        if (message.Tool is { } tool && await policies.ApplyAsync(context, route, caller, callerId, message, tool, baseUrl, metadataUrl) is { } refused)
        {
            audit.Record(route, tool, binding?.CredentialId, callerId, refused, Stopwatch.GetElapsedTime(started));
            return;
        }
        var outcome = "ok";
        try
        {
            outcome = await RelayWithCredentialAsync(context, route, binding, message, body, baseUrl, ToolListFilter.For(route, caller, message), trace, upstreamSession);
        }
        catch (Exception exception) when (exception is OperationCanceledException or IOException && context.RequestAborted.IsCancellationRequested)
        {
            // The agent went away (or canceled a per-request call); the upstream request is closed with it.
            outcome = "canceled";
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            // Last resort: never a 500 with a half-written stream. The exception's text is not logged (it may quote a value).
            LogRelayFailed(logger, route.ServerId, exception.GetType().Name);
            outcome = "gateway_error";
            if (!context.Response.HasStarted)
            {
                context.Response.Clear();
                await Problems.WriteAsync(context, StatusCodes.Status502BadGateway, $"The call to the MCP server '{route.Name}' failed in the gateway; try again.");
            }
            else
            {
                context.Abort();
            }
        }
        finally
        {
            if (message.Tool is not null)
            {
                audit.Record(route, message.Tool, binding?.CredentialId, callerId, outcome, Stopwatch.GetElapsedTime(started));
            }
        }
    }

    private static async Task<byte[]> ReadBodyAsync(HttpRequest request)
    {
        using var buffer = new MemoryStream(request.ContentLength is > 0 and < 1 << 20 ? (int)request.ContentLength.Value : 1024);
        await request.Body.CopyToAsync(buffer, request.HttpContext.RequestAborted);
        return buffer.ToArray();
    }

    /// <returns>The outcome recorded for a tool call.</returns>
    private async Task<string> RelayWithCredentialAsync(HttpContext context, GatewayRoute route, CredentialBinding? binding, RelayedMessage message, byte[] body,
        string baseUrl, ToolListFilter? filter, Activity? trace, string? upstreamSession)
    {
        List<KeyValuePair<string, string>> injected = [];
        if (binding is not null)
        {
            var (current, error) = await credentials.AccessTokenAsync(route.OwnerId, binding.CredentialId, context.RequestAborted);
            if (current is null)
            {
                await GatewayRefusals.ForCredentialAsync(context, route, binding, message, error!, baseUrl);
                return GatewayRefusals.CredentialOutcome(error!);
            }
            injected = [.. binding.Headers(current)];
        }

        using var upstreamRequest = new HttpRequestMessage(new HttpMethod(context.Request.Method), route.Upstream);
        foreach (var header in context.Request.Headers)
        {
            if ((RequestHeadersRelayed.Contains(header.Key) || IsProtocolHeader(header.Key))
                && !injected.Exists(h => string.Equals(header.Key, h.Key, StringComparison.OrdinalIgnoreCase))
                && !(upstreamSession is not null && string.Equals(header.Key, SessionHeader, StringComparison.OrdinalIgnoreCase)))
            {
                upstreamRequest.Headers.TryAddWithoutValidation(header.Key, (IEnumerable<string?>)header.Value);
            }
        }
        if (upstreamSession is { Length: > 0 })
        {
            upstreamRequest.Headers.TryAddWithoutValidation(SessionHeader, upstreamSession);
        }
        foreach (var (name, value) in injected)
        {
            upstreamRequest.Headers.TryAddWithoutValidation(name, value);
        }
        if (trace?.Id is { } traceParent)
        {
            upstreamRequest.Headers.TryAddWithoutValidation("traceparent", traceParent);
        }
        if (HttpMethods.IsPost(context.Request.Method))
        {
            upstreamRequest.Content = new ByteArrayContent(body);
            if (context.Request.ContentType is { } contentType)
            {
                upstreamRequest.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
            }
        }

        HttpResponseMessage upstream;
        using (var waitForHeaders = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted))
        {
            waitForHeaders.CancelAfter(TimeSpan.FromSeconds(options.Value.UpstreamTimeoutSeconds));
            try
            {
                upstream = await httpClients.CreateClient(HttpClientName)
                    .SendAsync(upstreamRequest, HttpCompletionOption.ResponseHeadersRead, waitForHeaders.Token);
            }
            catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
            {
                LogUpstreamFailed(logger, route.ServerId, route.Upstream.Host, "timed out");
                await GatewayRefusals.UpstreamFailedAsync(context, message,
                    $"The MCP server '{route.Name}' did not answer within {options.Value.UpstreamTimeoutSeconds} s; it may be overloaded. Try again later.",
                    "upstream_timeout", StatusCodes.Status504GatewayTimeout);
                return "upstream_timeout";
            }
            catch (HttpRequestException exception)
            {
                LogUpstreamFailed(logger, route.ServerId, route.Upstream.Host, exception.Message);
                await GatewayRefusals.UpstreamFailedAsync(context, message,
                    $"The MCP server '{route.Name}' could not be reached ({exception.Message}). Try again later.",
                    "upstream_unreachable", StatusCodes.Status502BadGateway);
                return "upstream_unreachable";
            }
        }

        using (upstream)
        {
            if ((int)upstream.StatusCode is >= 300 and < 400)
            {
                // Following or relaying a redirect would send the agent (and its credential for Latchkey) elsewhere.
                LogUpstreamFailed(logger, route.ServerId, route.Upstream.Host, $"answered a redirect ({(int)upstream.StatusCode})");
                await GatewayRefusals.UpstreamFailedAsync(context, message,
                    $"The MCP server '{route.Name}' answered with a redirect ({(int)upstream.StatusCode}), which the gateway neither follows nor relays. Its owner should check the server's url.",
                    $"upstream_http_{(int)upstream.StatusCode}", StatusCodes.Status502BadGateway);
                return $"upstream_http_{(int)upstream.StatusCode}";
            }
            if (upstream.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
            {
                await GatewayRefusals.ForUpstreamAuthorizationAsync(context, route, binding, message, (int)upstream.StatusCode, baseUrl);
                return $"upstream_http_{(int)upstream.StatusCode}";
            }
            try
            {
                await CopyResponseAsync(context, upstream, filter, relaySession: upstreamSession is null);
            }
            catch (Exception exception) when (exception is IOException or HttpRequestException && !context.RequestAborted.IsCancellationRequested)
            {
                LogUpstreamFailed(logger, route.ServerId, route.Upstream.Host, "broke off the response: " + exception.Message);
                await EndBrokenResponseAsync(context, route, message);
                return "upstream_broke_off";
            }
            return upstream.IsSuccessStatusCode ? "ok" : $"upstream_http_{(int)upstream.StatusCode}";
        }
    }

    /// <summary>
    /// Relays the upstream's answer: server-sent events as they come; a JSON answer whole once it
    /// has all arrived (up to <see cref="BufferedAnswerBytes"/>, so that an upstream that breaks
    /// off mid-answer still gives the agent a readable error); a tool list rewritten by policy.
    /// </summary>
    private static async Task CopyResponseAsync(HttpContext context, HttpResponseMessage upstream, ToolListFilter? filter, bool relaySession)
    {
        var response = context.Response;
        response.StatusCode = (int)upstream.StatusCode;
        foreach (var header in upstream.Headers.Concat(upstream.Content.Headers))
        {
            if ((ResponseHeadersRelayed.Contains(header.Key) || IsProtocolHeader(header.Key))
                && !(filter is not null && string.Equals(header.Key, "Content-Length", StringComparison.OrdinalIgnoreCase))
                && (relaySession || !string.Equals(header.Key, SessionHeader, StringComparison.OrdinalIgnoreCase)))
            {
                try
                {
                    response.Headers[header.Key] = header.Value.ToArray();
                }
                catch (InvalidOperationException)
                {
                    // A value Kestrel will not send (control or non-ASCII characters) is left out.
                }
            }
        }

        await using var stream = await upstream.Content.ReadAsStreamAsync(context.RequestAborted);
        var serverSentEvents = upstream.Content.Headers.ContentType?.MediaType == "text/event-stream";
        if (filter is not null)
        {
            var (answer, complete) = await ReadUpToAsync(stream, ToolListFilter.MaxAnswerBytes, context.RequestAborted);
            if (!complete)
            {
                throw new IOException("The tool list is larger than the gateway filters.");
            }
            await response.Body.WriteAsync(filter.Rewrite(answer, serverSentEvents), context.RequestAborted);
            return;
        }
        if (serverSentEvents)
        {
            // Server-sent events go out as they come in.
            context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
            await response.StartAsync(context.RequestAborted);
            var buffer = new byte[8192];
            int read;
            while ((read = await stream.ReadAsync(buffer, context.RequestAborted)) > 0)
            {
                await response.Body.WriteAsync(buffer.AsMemory(0, read), context.RequestAborted);
                await response.Body.FlushAsync(context.RequestAborted);
            }
            return;
        }
        var (start, whole) = await ReadUpToAsync(stream, BufferedAnswerBytes, context.RequestAborted);
        await response.Body.WriteAsync(start, context.RequestAborted);
        if (!whole)
        {
            await stream.CopyToAsync(response.Body, context.RequestAborted);
        }
    }

    /// <summary>JSON answers up to this size are read whole before any of it goes to the agent.</summary>
    private const int BufferedAnswerBytes = 4 << 20;

    private static async Task<(byte[] Bytes, bool Complete)> ReadUpToAsync(Stream stream, int limit, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[16384];
        int read;
        while ((read = await stream.ReadAsync(chunk, cancellationToken)) > 0)
        {
            buffer.Write(chunk, 0, read);
            if (buffer.Length >= limit)
            {
                return (buffer.ToArray(), false);
            }
        }
        return (buffer.ToArray(), true);
    }

    /// <summary>
    /// The upstream broke off. Before the agent's answer started, it gets the readable error;
    /// within an event stream, a last event answering its request; otherwise the connection ends.
    /// </summary>
    private static async Task EndBrokenResponseAsync(HttpContext context, GatewayRoute route, RelayedMessage message)
    {
        var text = $"The MCP server '{route.Name}' broke off its answer. Try again later.";
        if (!context.Response.HasStarted)
        {
            context.Response.Clear();
            await GatewayRefusals.UpstreamFailedAsync(context, message, text, "upstream_broke_off", StatusCodes.Status502BadGateway);
            return;
        }
        if (context.Response.ContentType?.StartsWith("text/event-stream", StringComparison.Ordinal) == true && message.Id is not null)
        {
            await GatewayRefusals.WriteEventAsync(context, message, text, "upstream_broke_off");
            return;
        }
        context.Abort();
    }

    /// <summary>An activity whose parent is the agent's <c>_meta.traceparent</c>, so that logs and the upstream request carry its trace.</summary>
    private static Activity? StartTrace(string traceParent) =>
        ActivityContext.TryParse(traceParent, null, out var parent)
            ? new Activity("Latchkey.McpGateway.Relay").SetParentId(parent.TraceId, parent.SpanId, parent.TraceFlags).Start()
            : null;

    [LoggerMessage(Level = LogLevel.Error, Message = "MCP server {ServerId}: relaying failed with {ExceptionType}")]
    private static partial void LogRelayFailed(ILogger logger, string serverId, string exceptionType);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MCP server {ServerId}: the upstream at {Host} failed: {Reason}")]
    private static partial void LogUpstreamFailed(ILogger logger, string serverId, string host, string reason);
}

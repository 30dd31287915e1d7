using Latchkey.Features.AgentApi;
using System.Diagnostics;
using System.Net;
using System.Security.Claims;
using System.Text.Json;
using Latchkey.Common;
using Latchkey.Features.Broker;
using Latchkey.Features.Broker.Credentials;
using Latchkey.Features.ExternalApi;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;

namespace Latchkey.Features.Mcp;

/// <summary>
/// <c>/mcp/servers/{id}/mcp</c>: relays Streamable HTTP MCP between an agent and the upstream server
/// byte for byte (sessions, notifications, cancellation and server-sent events pass through), and
/// puts a current token of the mapped credential on each tool call. The agent's own credential
/// (API key or Latchkey access token) never goes upstream, and the third-party token never comes back.
/// </summary>
public sealed partial class McpGateway(
    McpServerService servers,
    CredentialService credentials,
    ToolCallAudit audit,
    IHttpClientFactory httpClients,
    IOptions<McpOptions> options,
    ILogger<McpGateway> logger)
{
    public const string HttpClientName = "latchkey-mcp-upstream";
    public const string RequiredScope = "USE_TOOLS";
    internal const string ToolsCall = "tools/call";

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

    public static string ResourceMetadataUrl(string baseUrl, string serverId) =>
        $"{baseUrl}/.well-known/oauth-protected-resource/mcp/servers/{Uri.EscapeDataString(serverId)}{McpServerService.GatewayPathSuffix}";

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

        var (caller, refusal) = await AuthenticateAsync(context, baseUrl, serverId, gatewayUrl);
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
            body = await ReadBodyAsync(context.Request);
            message = RelayedMessage.Read(body);
            if (message.Unreadable || message.Invalid)
            {
                // What the gateway cannot read it cannot route to the right credential or audit: refused, as JSON-RPC does.
                await RefuseMalformedAsync(context, message.Unreadable
                    ? (McpErrorCode.ParseError, "The body is not a JSON-RPC message (JSON object or array, UTF-8, no duplicate members).")
                    : (McpErrorCode.InvalidRequest, "The body is not a JSON-RPC 2.0 request, notification or response (jsonrpc \"2.0\", a string method, a string or number id, object or array params)."));
                return;
            }
            if (message.MixedToolCalls)
            {
                await Problems.WriteAsync(context, StatusCodes.Status400BadRequest,
                    "A batch may not carry more than one tools/call; send tool calls one per request.");
                return;
            }
        }

        var binding = route.For(message.Tool);
        var callerId = caller.FindFirstValue(ExternalApiClaims.CredentialId) ?? caller.FindFirstValue(ExternalApiClaims.ClientId);
        var outcome = "ok";
        try
        {
            outcome = await RelayWithCredentialAsync(context, route, binding, message, body, baseUrl);
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

    /// <summary>The caller if it may use this gateway, or how to refuse it (RFC 6750, RFC 9728 and the MCP authorization spec).</summary>
    private static async Task<(ClaimsPrincipal? Caller, Func<HttpContext, Task>? Refusal)> AuthenticateAsync(
        HttpContext context, string baseUrl, string serverId, string gatewayUrl)
    {
        var metadata = ResourceMetadataUrl(baseUrl, serverId);
        var result = await context.AuthenticateAsync(ExternalApiAuthenticationHandler.SchemeName);
        if (!result.Succeeded)
        {
            var error = result.Failure?.Message;
            return (null, c => Challenge(c, StatusCodes.Status401Unauthorized, metadata, error is null ? null : "invalid_token",
                error ?? "Authenticate with an API key (X-API-Key) or a Latchkey access token for this gateway (Authorization: Bearer)."));
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

    private static Task Challenge(HttpContext context, int status, string resourceMetadata, string? error, string description)
    {
        var challenge = $"Bearer resource_metadata=\"{resourceMetadata}\", scope=\"{RequiredScope}\"";
        if (error is not null)
        {
            challenge += $", error=\"{error}\", error_description=\"{description.Replace('"', '\'')}\"";
        }
        context.Response.Headers.Append(HeaderNames.WWWAuthenticate, challenge);
        return Problems.WriteAsync(context, status, description, error is null ? null : new Dictionary<string, object?> { ["error"] = error });
    }

    private static async Task<byte[]> ReadBodyAsync(HttpRequest request)
    {
        using var buffer = new MemoryStream(request.ContentLength is > 0 and < 1 << 20 ? (int)request.ContentLength.Value : 1024);
        await request.Body.CopyToAsync(buffer, request.HttpContext.RequestAborted);
        return buffer.ToArray();
    }

    /// <returns>The outcome recorded for a tool call.</returns>
    private async Task<string> RelayWithCredentialAsync(HttpContext context, GatewayRoute route, CredentialBinding? binding, RelayedMessage message, byte[] body, string baseUrl)
    {
        string? token = null;
        if (binding is not null)
        {
            var (current, error) = await credentials.AccessTokenAsync(route.OwnerId, binding.CredentialId, context.RequestAborted);
            if (current is null)
            {
                await RefuseForCredentialAsync(context, route, binding, message, error!, baseUrl);
                return CredentialOutcome(error!);
            }
            token = current.AccessToken;
        }

        using var upstreamRequest = new HttpRequestMessage(new HttpMethod(context.Request.Method), route.Upstream);
        foreach (var header in context.Request.Headers)
        {
            if ((RequestHeadersRelayed.Contains(header.Key) || IsProtocolHeader(header.Key))
                && (binding is null || !string.Equals(header.Key, binding.HeaderName, StringComparison.OrdinalIgnoreCase)))
            {
                upstreamRequest.Headers.TryAddWithoutValidation(header.Key, (IEnumerable<string?>)header.Value);
            }
        }
        if (binding is not null)
        {
            upstreamRequest.Headers.TryAddWithoutValidation(binding.HeaderName, binding.HeaderValue(token!));
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
                await Problems.WriteAsync(context, StatusCodes.Status504GatewayTimeout,
                    $"The upstream MCP server '{route.Name}' did not answer within {options.Value.UpstreamTimeoutSeconds} s.");
                return "upstream_timeout";
            }
            catch (HttpRequestException exception)
            {
                LogUpstreamFailed(logger, route.ServerId, route.Upstream.Host, exception.Message);
                await Problems.WriteAsync(context, StatusCodes.Status502BadGateway,
                    $"The upstream MCP server '{route.Name}' could not be reached: {exception.Message}");
                return "upstream_unreachable";
            }
        }

        using (upstream)
        {
            if ((int)upstream.StatusCode is >= 300 and < 400)
            {
                // Following or relaying a redirect would send the agent (and its credential for Latchkey) elsewhere.
                LogUpstreamFailed(logger, route.ServerId, route.Upstream.Host, $"answered a redirect ({(int)upstream.StatusCode})");
                await Problems.WriteAsync(context, StatusCodes.Status502BadGateway,
                    $"The upstream MCP server '{route.Name}' answered with a redirect ({(int)upstream.StatusCode}), which the gateway neither follows nor relays. Check the server's url.");
                return $"upstream_http_{(int)upstream.StatusCode}";
            }
            if (upstream.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
            {
                await RefuseForUpstreamAuthorizationAsync(context, route, binding, message, (int)upstream.StatusCode, baseUrl);
                return $"upstream_http_{(int)upstream.StatusCode}";
            }
            try
            {
                await CopyResponseAsync(context, upstream);
            }
            catch (Exception exception) when (exception is IOException or HttpRequestException && !context.RequestAborted.IsCancellationRequested)
            {
                // The upstream broke off mid-response: the agent's response has started, so end it the same way.
                LogUpstreamFailed(logger, route.ServerId, route.Upstream.Host, "broke off the response: " + exception.Message);
                context.Abort();
                return "upstream_broke_off";
            }
            return upstream.IsSuccessStatusCode ? "ok" : $"upstream_http_{(int)upstream.StatusCode}";
        }
    }

    private static async Task CopyResponseAsync(HttpContext context, HttpResponseMessage upstream)
    {
        var response = context.Response;
        response.StatusCode = (int)upstream.StatusCode;
        foreach (var header in upstream.Headers.Concat(upstream.Content.Headers))
        {
            if (ResponseHeadersRelayed.Contains(header.Key) || IsProtocolHeader(header.Key))
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
        if (upstream.Content.Headers.ContentType?.MediaType == "text/event-stream")
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
        }
        else
        {
            await stream.CopyToAsync(response.Body, context.RequestAborted);
        }
    }

    /// <summary>The mapped credential cannot give a token: a tool call gets a tool error that says how to fix it.</summary>
    private static Task RefuseForCredentialAsync(HttpContext context, GatewayRoute route, CredentialBinding binding, RelayedMessage message, AgentError error, string baseUrl)
    {
        var fix = error.Status == StatusCodes.Status404NotFound
            ? $"Map an existing credential (PUT {baseUrl}/mcp/servers/{route.ServerId}/tools/{{tool}}/credential) or connect the account at {baseUrl}{Site.ProfileNavigation.Connections}."
            : error.Status == StatusCodes.Status502BadGateway
                ? "The provider did not answer the refresh; try again shortly."
                : $"Reconnect it at {McpServerService.ReconnectUrl(baseUrl, binding.CredentialId)}, then call the tool again.";
        var text = error.Status == StatusCodes.Status404NotFound
            ? $"The credential '{binding.CredentialId}' used for this call no longer exists. {fix}"
            : $"The credential '{binding.CredentialId}' used for this call cannot be used: {error.Message} {fix}";
        return RefuseAsync(context, message, text, new Dictionary<string, object?>
        {
            ["error"] = CredentialOutcome(error),
            ["credential_id"] = binding.CredentialId,
            ["fix_url"] = error.Status == StatusCodes.Status502BadGateway ? null : McpServerService.ReconnectUrl(baseUrl, binding.CredentialId),
        });
    }

    private static string CredentialOutcome(AgentError error) =>
        error.Error.StartsWith("credential_", StringComparison.Ordinal) ? error.Error : "credential_" + error.Error;

    /// <summary>The upstream refused: never hand its challenge to the agent (whose token is Latchkey's, not the upstream's).</summary>
    private static Task RefuseForUpstreamAuthorizationAsync(HttpContext context, GatewayRoute route, CredentialBinding? binding, RelayedMessage message, int status, string baseUrl)
    {
        var text = binding is null
            ? $"The upstream MCP server '{route.Name}' requires authorization ({status}), and no credential is mapped for this call. " +
              $"Map one: PUT {baseUrl}/mcp/servers/{route.ServerId}/tools/{{tool}}/credential, or set the server's default_credential_id."
            : $"The upstream MCP server '{route.Name}' refused the credential '{binding.CredentialId}' ({status}). " +
              $"It may lack the scopes this tool needs or have been revoked at the provider; reconnect it at {McpServerService.ReconnectUrl(baseUrl, binding.CredentialId)}.";
        return RefuseAsync(context, message, text, new Dictionary<string, object?>
        {
            ["error"] = "upstream_refused_credential",
            ["credential_id"] = binding?.CredentialId,
            ["upstream_status"] = status,
        });
    }

    /// <summary>A body the gateway cannot route: 400 with a JSON-RPC error whose id is null, since none could be read.</summary>
    private static async Task RefuseMalformedAsync(HttpContext context, (McpErrorCode Code, string Message) error)
    {
        context.Response.StatusCode = StatusCodes.Status400BadRequest;
        context.Response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(context.Response.Body,
            new { jsonrpc = "2.0", id = (string?)null, error = new { code = (int)error.Code, message = error.Message } },
            cancellationToken: context.RequestAborted);
    }

    /// <summary>
    /// A tool call gets a tool result with <c>isError</c> (the agent's model reads it); any other
    /// JSON-RPC request gets a JSON-RPC error; a notification, stream or session request gets 502.
    /// </summary>
    private static async Task RefuseAsync(HttpContext context, RelayedMessage message, string text, Dictionary<string, object?> details)
    {
        if (message.Id is { } id)
        {
            JsonRpcMessage answer = message.Tool is not null
                ? new JsonRpcResponse
                {
                    Id = id,
                    Result = JsonSerializer.SerializeToNode(new CallToolResult { IsError = true, Content = [new TextContentBlock { Text = text }] }, McpJsonUtilities.DefaultOptions),
                }
                : new JsonRpcError { Id = id, Error = new JsonRpcErrorDetail { Code = (int)McpErrorCode.InternalError, Message = text, Data = JsonSerializer.SerializeToElement(details) } };
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = "application/json";
            await JsonSerializer.SerializeAsync(context.Response.Body, answer, McpJsonUtilities.DefaultOptions.GetTypeInfo(typeof(JsonRpcMessage)), context.RequestAborted);
            return;
        }
        await Problems.WriteAsync(context, StatusCodes.Status502BadGateway, text, details);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "MCP server {ServerId}: relaying failed with {ExceptionType}")]
    private static partial void LogRelayFailed(ILogger logger, string serverId, string exceptionType);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MCP server {ServerId}: the upstream at {Host} failed: {Reason}")]
    private static partial void LogUpstreamFailed(ILogger logger, string serverId, string host, string reason);
}

/// <summary>What the gateway needs to know of a POSTed JSON-RPC message: is it a tool call, of which tool, with which id.</summary>
internal readonly record struct RelayedMessage(string? Tool, RequestId? Id, bool MixedToolCalls, bool Unreadable = false, bool Invalid = false)
{
    private static readonly JsonDocumentOptions Strict = new() { AllowDuplicateProperties = false };

    public static RelayedMessage None => default;

    /// <summary>The message's routing facts; <see cref="Unreadable"/> for a body that is not one JSON value in UTF-8 without duplicate members.</summary>
    public static RelayedMessage Read(byte[] body)
    {
        try
        {
            using var document = JsonDocument.Parse(body, Strict);
            var root = document.RootElement;
            if (!IsJsonRpc(root))
            {
                return new RelayedMessage(null, null, false, Invalid: true);
            }
            if (root.ValueKind == JsonValueKind.Object)
            {
                return FromMessage(root);
            }
            if (root.ValueKind == JsonValueKind.Array)
            {
                // JSON-RPC batches (2025-03-26): one tool call at most, so that one credential covers the request.
                var toolCalls = root.EnumerateArray().Where(m => m.ValueKind == JsonValueKind.Object).Select(FromMessage).Where(m => m.Tool is not null).ToList();
                return toolCalls.Count switch
                {
                    0 => None,
                    1 => toolCalls[0] with { Id = null },
                    _ => new RelayedMessage(null, null, MixedToolCalls: true),
                };
            }
        }
        catch (JsonException)
        {
            return new RelayedMessage(null, null, false, Unreadable: true);
        }
        return None;
    }

    /// <summary>
    /// A JSON-RPC 2.0 message as MCP allows it, or a non-empty batch of them: a request or
    /// notification (string method, string or number id, object or array params) or a response
    /// (id and a result or an error). Anything else is refused here rather than left for the
    /// upstream to choke on.
    /// </summary>
    private static bool IsJsonRpc(JsonElement root)
    {
        if (root.ValueKind == JsonValueKind.Array)
        {
            var count = 0;
            foreach (var message in root.EnumerateArray())
            {
                if (!IsJsonRpcMessage(message))
                {
                    return false;
                }
                count++;
            }
            return count > 0;
        }
        return IsJsonRpcMessage(root);
    }

    private static bool IsJsonRpcMessage(JsonElement message)
    {
        if (message.ValueKind != JsonValueKind.Object
            || !message.TryGetProperty("jsonrpc", out var version) || version.ValueKind != JsonValueKind.String || !version.ValueEquals("2.0"))
        {
            return false;
        }
        var hasId = message.TryGetProperty("id", out var id);
        if (hasId && id.ValueKind is not (JsonValueKind.String or JsonValueKind.Number))
        {
            return false;
        }
        if (message.TryGetProperty("method", out var method))
        {
            return method.ValueKind == JsonValueKind.String
                && (!message.TryGetProperty("params", out var parameters) || parameters.ValueKind is JsonValueKind.Object or JsonValueKind.Array);
        }
        return hasId && (message.TryGetProperty("result", out _) ^ message.TryGetProperty("error", out _));
    }


    private static RelayedMessage FromMessage(JsonElement message)
    {
        if (!message.TryGetProperty("method", out var method) || method.ValueKind != JsonValueKind.String)
        {
            return None;
        }
        RequestId? id = message.TryGetProperty("id", out var idValue)
            ? idValue.ValueKind switch
            {
                JsonValueKind.String => new RequestId(idValue.GetString()!),
                JsonValueKind.Number when idValue.TryGetInt64(out var number) => new RequestId(number),
                _ => null,
            }
            : null;
        if (!method.ValueEquals(McpGateway.ToolsCall))
        {
            return new RelayedMessage(null, id, false);
        }
        var tool = message.TryGetProperty("params", out var parameters) && parameters.ValueKind == JsonValueKind.Object
            && parameters.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String
                ? name.GetString()
                : null;
        return new RelayedMessage(tool ?? "", id, false);
    }
}

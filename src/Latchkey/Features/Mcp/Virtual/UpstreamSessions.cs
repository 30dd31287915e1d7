using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Latchkey.Features.Broker.Credentials;
using Latchkey.Features.Mcp.Gateway;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Mcp.Virtual;

/// <summary>
/// The virtual gateway's side of each member: an MCP session with the member's upstream (opened
/// on first use, kept per agent session on this node, opened again when the upstream forgets it),
/// and JSON-RPC requests over it with the member's credential, answered in JSON or server-sent events.
/// </summary>
public sealed class UpstreamSessions(IHttpClientFactory httpClients, CredentialService credentials, IMemoryCache sessions, IOptions<McpOptions> options)
{
    public const string LatestProtocolVersion = "2025-11-25";
    private static readonly TimeSpan SessionLifetime = TimeSpan.FromMinutes(30);

    /// <summary>The upstream session of <paramref name="route"/> for this agent session ("" when the upstream keeps none), opened if needed.</summary>
    public async Task<(string? SessionId, string? Problem)> EnsureAsync(GatewayRoute route, string agentSession, string protocolVersion, CancellationToken cancellationToken)
    {
        var key = (typeof(UpstreamSessions), agentSession, route.ServerId);
        if (sessions.TryGetValue(key, out string? known))
        {
            return (known, null);
        }
        var initialize = new JsonObject
        {
            ["jsonrpc"] = "2.0",
            ["id"] = "latchkey-init",
            ["method"] = "initialize",
            ["params"] = new JsonObject
            {
                ["protocolVersion"] = protocolVersion,
                ["capabilities"] = new JsonObject(),
                ["clientInfo"] = new JsonObject { ["name"] = "latchkey-virtual-gateway", ["version"] = "1" },
            },
        };
        using var response = await SendAsync(route, initialize.ToJsonString(), null, protocolVersion, cancellationToken);
        if (response.Response is not { } answer)
        {
            return (null, response.Problem);
        }
        if (!answer.IsSuccessStatusCode)
        {
            return (null, $"The MCP server '{route.Name}' refused to start a session ({(int)answer.StatusCode}).");
        }
        var sessionId = answer.Headers.TryGetValues("Mcp-Session-Id", out var values) ? values.First() : "";
        await ReadAnswerAsync(answer, "latchkey-init", cancellationToken);
        using (var initialized = await SendAsync(route, """{"jsonrpc":"2.0","method":"notifications/initialized"}""", sessionId, protocolVersion, cancellationToken))
        {
        }
        sessions.Set(key, sessionId, SessionLifetime);
        return (sessionId, null);
    }

    /// <summary>Forgets an upstream session that the upstream no longer knows.</summary>
    public void Forget(GatewayRoute route, string agentSession) => sessions.Remove((typeof(UpstreamSessions), agentSession, route.ServerId));

    /// <summary>One JSON-RPC request to the member and its answer's message, or why there is none.</summary>
    public async Task<(JsonNode? Answer, string? Problem)> RequestAsync(GatewayRoute route, string agentSession, string protocolVersion, string method, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 2; attempt++)
        {
            var (session, problem) = await EnsureAsync(route, agentSession, protocolVersion, cancellationToken);
            if (session is null)
            {
                return (null, problem);
            }
            var id = "latchkey-" + method;
            using var sent = await SendAsync(route, new JsonObject { ["jsonrpc"] = "2.0", ["id"] = id, ["method"] = method }.ToJsonString(), session, protocolVersion, cancellationToken);
            if (sent.Response is not { } answer)
            {
                return (null, sent.Problem);
            }
            if (answer.StatusCode == HttpStatusCode.NotFound && session.Length > 0)
            {
                // The upstream forgot the session (restarted, expired): open a new one, once.
                Forget(route, agentSession);
                continue;
            }
            if (!answer.IsSuccessStatusCode)
            {
                return (null, $"The MCP server '{route.Name}' answered {method} with {(int)answer.StatusCode}.");
            }
            return (await ReadAnswerAsync(answer, id, cancellationToken), null);
        }
        return (null, $"The MCP server '{route.Name}' keeps forgetting its session.");
    }

    /// <summary>A POST of <paramref name="json"/> to the member's upstream with its default credential.</summary>
    public async Task<SentRequest> SendAsync(GatewayRoute route, string json, string? sessionId, string protocolVersion, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, route.Upstream) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        request.Headers.TryAddWithoutValidation("Accept", "application/json, text/event-stream");
        request.Headers.TryAddWithoutValidation("MCP-Protocol-Version", protocolVersion);
        if (sessionId is { Length: > 0 })
        {
            request.Headers.TryAddWithoutValidation("Mcp-Session-Id", sessionId);
        }
        if (await AuthorizeAsync(request, route, cancellationToken) is { } problem)
        {
            return new SentRequest(null, problem);
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(options.Value.UpstreamTimeoutSeconds));
        try
        {
            return new SentRequest(await httpClients.CreateClient(McpGateway.HttpClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token), null);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new SentRequest(null, $"The MCP server '{route.Name}' did not answer within {options.Value.UpstreamTimeoutSeconds} s.");
        }
        catch (HttpRequestException exception)
        {
            return new SentRequest(null, $"The MCP server '{route.Name}' could not be reached ({exception.Message}).");
        }
    }

    /// <summary>Puts the member's default credential on a request that is not a tool call; a problem when it cannot give a token.</summary>
    public async Task<string?> AuthorizeAsync(HttpRequestMessage request, GatewayRoute route, CancellationToken cancellationToken)
    {
        if (route.Default is not { } binding)
        {
            return null;
        }
        var (current, error) = await credentials.AccessTokenAsync(route.OwnerId, binding.CredentialId, cancellationToken);
        if (current is null)
        {
            return $"The credential '{binding.CredentialId}' of the MCP server '{route.Name}' cannot be used: {error!.Message}";
        }
        foreach (var (name, value) in binding.Headers(current))
        {
            request.Headers.Remove(name);
            request.Headers.TryAddWithoutValidation(name, value);
        }
        return null;
    }

    /// <summary>The message answering <paramref name="id"/> in a JSON or server-sent events answer.</summary>
    private static async Task<JsonNode?> ReadAnswerAsync(HttpResponseMessage answer, string id, CancellationToken cancellationToken)
    {
        var text = await answer.Content.ReadAsStringAsync(cancellationToken);
        if (answer.Content.Headers.ContentType?.MediaType != "text/event-stream")
        {
            return Parse(text);
        }
        foreach (var data in ServerSentEvents.DataOf(text))
        {
            if (Parse(data) is { } message && message["id"]?.ToString() == id)
            {
                return message;
            }
        }
        return null;
    }

    private static JsonNode? Parse(string json)
    {
        try
        {
            return JsonNode.Parse(json);
        }
        catch (Exception exception) when (exception is JsonException or InvalidOperationException)
        {
            return null;
        }
    }
}

/// <summary>An upstream answer (dispose it), or why there is none.</summary>
public sealed record SentRequest(HttpResponseMessage? Response, string? Problem) : IDisposable
{
    public void Dispose() => Response?.Dispose();
}

/// <summary>The data of each event in a server-sent events text.</summary>
internal static class ServerSentEvents
{
    public static IEnumerable<string> DataOf(string text)
    {
        var data = new List<string>();
        foreach (var line in text.Replace("\r\n", "\n").Split('\n').Append(""))
        {
            if (line.Length == 0)
            {
                if (data.Count > 0)
                {
                    yield return string.Join('\n', data);
                    data.Clear();
                }
                continue;
            }
            if (line.StartsWith("data:", StringComparison.Ordinal))
            {
                data.Add(line[5..].TrimStart(' '));
            }
        }
    }
}

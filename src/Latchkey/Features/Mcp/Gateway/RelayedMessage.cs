using System.Text.Json;
using ModelContextProtocol.Protocol;

namespace Latchkey.Features.Mcp.Gateway;

/// <summary>
/// What the gateway needs to know of a POSTed JSON-RPC message: is it a tool call, of which tool,
/// with which id and arguments; the method of a single request (to filter <c>tools/list</c>); and
/// the W3C trace context the agent put in <c>params._meta.traceparent</c>.
/// </summary>
internal readonly record struct RelayedMessage(string? Tool, RequestId? Id, bool MixedToolCalls, bool Unreadable = false, bool Invalid = false,
    string? Method = null, JsonElement? Arguments = null, string? TraceParent = null)
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
                return FromMessage(root) with { Method = root.TryGetProperty("method", out var method) && method.ValueKind == JsonValueKind.String ? method.GetString() : null };
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
        catch (Exception exception) when (exception is JsonException or InvalidOperationException)
        {
            // InvalidOperationException: a string with a lone surrogate, which is no text.
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
        var parameters = message.TryGetProperty("params", out var value) && value.ValueKind == JsonValueKind.Object ? value : (JsonElement?)null;
        var traceParent = parameters is { } p && p.TryGetProperty("_meta", out var meta) && meta.ValueKind == JsonValueKind.Object
            && meta.TryGetProperty("traceparent", out var trace) && trace.ValueKind == JsonValueKind.String
                ? trace.GetString()
                : null;
        if (!method.ValueEquals(McpGateway.ToolsCall))
        {
            return new RelayedMessage(null, id, false, TraceParent: traceParent);
        }
        var tool = parameters is { } call && call.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String
            ? name.GetString()
            : null;
        var arguments = parameters is { } withArguments && withArguments.TryGetProperty("arguments", out var args) ? args.Clone() : (JsonElement?)null;
        return new RelayedMessage(tool ?? "", id, false, Arguments: arguments, TraceParent: traceParent);
    }
}

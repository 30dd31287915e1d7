using System.Text.Json;
using Latchkey.Common;
using Latchkey.Features.AgentApi;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;

namespace Latchkey.Features.Mcp.Gateway;

/// <summary>
/// How the gateway says no without breaking the agent's MCP session: a tool call gets a tool
/// result with <c>isError</c> and the fix, another request a JSON-RPC error, anything else 502.
/// </summary>
internal static class GatewayRefusals
{
    /// <summary>The mapped credential cannot give a token: a tool call gets a tool error that says how to fix it.</summary>
    public static Task ForCredentialAsync(HttpContext context, GatewayRoute route, CredentialBinding binding, RelayedMessage message, AgentError error, string baseUrl)
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

    public static string CredentialOutcome(AgentError error) =>
        error.Error.StartsWith("credential_", StringComparison.Ordinal) ? error.Error : "credential_" + error.Error;

    /// <summary>The upstream refused: never hand its challenge to the agent (whose token is Latchkey's, not the upstream's).</summary>
    public static Task ForUpstreamAuthorizationAsync(HttpContext context, GatewayRoute route, CredentialBinding? binding, RelayedMessage message, int status, string baseUrl)
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

    /// <summary>
    /// A tool call the tool's policy refuses (a denied tool, an argument that breaks a rule): a
    /// JSON-RPC error (invalid params, as for a tool the server does not have) that names the rule.
    /// </summary>
    public static async Task ToolRefusedAsync(HttpContext context, RelayedMessage message, string text, Dictionary<string, object?> details)
    {
        if (message.Id is not { } id)
        {
            // A tool call inside a batch: no one id to answer, so the whole request is refused.
            await Problems.WriteAsync(context, StatusCodes.Status403Forbidden, text, details);
            return;
        }
        await WriteJsonRpcAsync(context, new JsonRpcError
        {
            Id = id,
            Error = new JsonRpcErrorDetail { Code = (int)McpErrorCode.InvalidParams, Message = text, Data = JsonSerializer.SerializeToElement(details) },
        });
    }

    /// <summary>
    /// The upstream could not be reached, timed out or broke off: a tool call gets a tool result
    /// with <c>isError</c> a model can read, another request a JSON-RPC error; only a request the
    /// agent expects no JSON-RPC answer to (a notification, a stream) gets an HTTP status.
    /// </summary>
    public static Task UpstreamFailedAsync(HttpContext context, RelayedMessage message, string text, string outcome, int status) =>
        RefuseAsync(context, message, text, new Dictionary<string, object?> { ["error"] = outcome }, status);

    /// <summary>A tool call that will not run now (held for approval, denied by the owner): a tool result with <c>isError</c> that says why.</summary>
    public static Task ToolErrorAsync(HttpContext context, RelayedMessage message, string text, Dictionary<string, object?> details) =>
        RefuseAsync(context, message, text, details, StatusCodes.Status403Forbidden);

    /// <summary>A body the gateway cannot route: 400 with a JSON-RPC error whose id is null, since none could be read.</summary>
    public static async Task MalformedAsync(HttpContext context, (McpErrorCode Code, string Message) error)
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
    private static async Task RefuseAsync(HttpContext context, RelayedMessage message, string text, Dictionary<string, object?> details,
        int statusWithoutId = StatusCodes.Status502BadGateway)
    {
        if (message.Id is not null)
        {
            await WriteJsonRpcAsync(context, Answer(message, text, details));
            return;
        }
        await Problems.WriteAsync(context, statusWithoutId, text, details);
    }

    /// <summary>One JSON-RPC message as the whole answer (200, JSON): the gateway's own answers, refusals and those of a virtual server.</summary>
    internal static async Task WriteJsonRpcAsync(HttpContext context, JsonRpcMessage answer)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(context.Response.Body, answer, AnswerType, context.RequestAborted);
    }

    /// <summary>The answer to the agent's request as one last server-sent event, for a stream the upstream broke off.</summary>
    public static async Task WriteEventAsync(HttpContext context, RelayedMessage message, string text, string error)
    {
        var data = JsonSerializer.Serialize(Answer(message, text, new Dictionary<string, object?> { ["error"] = error }), AnswerType);
        await context.Response.WriteAsync($"event: message\ndata: {data}\n\n", context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
    }

    private static System.Text.Json.Serialization.Metadata.JsonTypeInfo AnswerType => McpJsonUtilities.DefaultOptions.GetTypeInfo(typeof(JsonRpcMessage));

    private static JsonRpcMessage Answer(RelayedMessage message, string text, Dictionary<string, object?> details) =>
        message.Tool is not null
            ? new JsonRpcResponse
            {
                Id = message.Id!.Value,
                Result = JsonSerializer.SerializeToNode(new CallToolResult { IsError = true, Content = [new TextContentBlock { Text = text }] }, McpJsonUtilities.DefaultOptions),
            }
            : new JsonRpcError { Id = message.Id!.Value, Error = new JsonRpcErrorDetail { Code = (int)McpErrorCode.InternalError, Message = text, Data = JsonSerializer.SerializeToElement(details) } };
}

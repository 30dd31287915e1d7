using Latchkey.Features.Telemetry;
using Latchkey.Storage;

namespace Latchkey.Features.Mcp;

/// <summary>Every tool call through the gateway (account, server, tool, credential, caller, outcome, duration), written off the request path.</summary>
public sealed class ToolCallAudit(IServiceScopeFactory scopes, TimeProvider time, LatchkeyMetrics metrics) : AuditLog<McpToolCall>(scopes)
{
    public void Record(GatewayRoute route, string tool, string? credentialId, string? caller, string outcome, TimeSpan duration) =>
        Record(route.OwnerId, route.ServerId, tool, credentialId, caller, outcome, duration);

    public void Record(string accountId, string serverId, string tool, string? credentialId, string? caller, string outcome, TimeSpan duration)
    {
        metrics.GatewayCall(serverId, tool, outcome, duration);
        TraceTags.Tool(serverId, tool);
        TraceTags.Credential(credentialId);
        Record(new McpToolCall
        {
            AccountId = accountId,
            ServerId = serverId,
            ToolName = tool.Length > 128 ? tool[..128] : tool,
            CredentialId = credentialId,
            Caller = caller,
            Outcome = outcome,
            DurationMs = (int)Math.Min(int.MaxValue, Math.Round(duration.TotalMilliseconds)),
            At = time.GetUtcNow(),
        });
    }
}

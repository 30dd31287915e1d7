using System.ComponentModel.DataAnnotations;

namespace Latchkey.Features.Mcp;

/// <summary>The MCP gateway. Bound from the <c>Mcp</c> section.</summary>
public sealed class McpOptions
{
    public const string SectionName = "Mcp";

    /// <summary>
    /// Allow upstream MCP servers on private, loopback and other special-purpose addresses, and plain
    /// http. Off in production (<see cref="Common.OutboundAddressGuard"/>); on for tests, labs and servers on the same host.
    /// </summary>
    public bool AllowPrivateNetworks { get; set; }

    /// <summary>
    /// How long the gateway waits for an upstream's response headers (a tool answering in JSON
    /// answers when it is done). Below the MCP SDKs' 60-second request timeout, so that the agent
    /// gets the gateway's readable error rather than its own timeout.
    /// </summary>
    [Range(1, 3600)]
    public int UpstreamTimeoutSeconds { get; set; } = 50;

    /// <summary>How long a call to a <c>require_approval</c> tool is held for the owner's decision before the agent is told to retry.</summary>
    [Range(0, 600)]
    public int ApprovalWaitSeconds { get; set; } = 60;

    /// <summary>How long the owner may decide on a held call, and an approval for one call waits for its retry.</summary>
    [Range(1, 1440)]
    public int ApprovalLifetimeMinutes { get; set; } = 15;

    /// <summary>How often a held call looks for the decision (in the database, so that any node's decision counts).</summary>
    [Range(50, 5000)]
    public int ApprovalPollMilliseconds { get; set; } = 250;

    /// <summary>How long listing an upstream's tools (<c>GET /mcp/servers/{id}/tools</c>) may take.</summary>
    [Range(1, 300)]
    public int ToolListTimeoutSeconds { get; set; } = 30;

    /// <summary>Tool calls kept in the audit per server for <c>GET /mcp/servers/{id}/tool-calls</c> are not limited; this caps one page.</summary>
    [Range(1, 10_000)]
    public int MaxToolCallsPerPage { get; set; } = 500;
}

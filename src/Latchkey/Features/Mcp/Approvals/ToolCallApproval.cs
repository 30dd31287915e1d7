using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Latchkey.Features.Mcp.Approvals;

/// <summary>Where an approval stands. Each moves on once, by a conditional update, whichever node does it.</summary>
public static class ApprovalStatuses
{
    public const string Pending = "pending";
    public const string Approved = "approved";
    public const string Denied = "denied";
    public const string Expired = "expired";

    /// <summary>An approval for one call, spent by that call.</summary>
    public const string Used = "used";
}

/// <summary>What an approval lets through: the one call, the caller's calls of the tool in this MCP session, or for an hour.</summary>
public static class ApprovalGrants
{
    public const string Once = "once";
    public const string Session = "session";
    public const string Hour = "hour";

    public static bool IsKnown(string? grant) => grant is Once or Session or Hour;
}

/// <summary>
/// A call to a <c>require_approval</c> tool, held until the server's owner decides: what was
/// called (server, tool, arguments), by whom (API key or app, MCP session), and the decision.
/// </summary>
public sealed class ToolCallApproval
{
    public required string Id { get; init; }
    public required string OwnerId { get; init; }
    public required string ServerId { get; init; }
    public required string ServerName { get; init; }
    public required string ToolName { get; init; }

    /// <summary>The call's arguments as the agent sent them (shown to the owner; never a credential: those are Latchkey's to add).</summary>
    public string? ArgumentsJson { get; init; }

    /// <summary>SHA-256 of the arguments, so that a retry of the same call finds its approval.</summary>
    public required string ArgumentsHash { get; init; }

    /// <summary>The API key id or OAuth client id of the agent.</summary>
    public required string Caller { get; init; }

    /// <summary>The MCP session (<c>Mcp-Session-Id</c>) the call came in, if any.</summary>
    public string? SessionId { get; init; }

    public required string Status { get; set; }
    public string? Grant { get; set; }
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>Until when the owner may decide.</summary>
    public DateTimeOffset ExpiresAt { get; init; }

    public DateTimeOffset? DecidedAt { get; set; }

    /// <summary>Until when an approval lets calls through.</summary>
    public DateTimeOffset? GrantExpiresAt { get; set; }
}

internal sealed class ToolCallApprovalConfiguration : IEntityTypeConfiguration<ToolCallApproval>
{
    public void Configure(EntityTypeBuilder<ToolCallApproval> approval)
    {
        approval.ToTable("mcp_approvals");
        approval.HasKey(a => a.Id);
        approval.Property(a => a.Id).HasMaxLength(40);
        approval.Property(a => a.ServerId).HasMaxLength(40);
        approval.Property(a => a.ServerName).HasMaxLength(200);
        approval.Property(a => a.ToolName).HasMaxLength(128);
        approval.Property(a => a.ArgumentsJson).HasMaxLength(16384);
        approval.Property(a => a.ArgumentsHash).HasMaxLength(64);
        approval.Property(a => a.Caller).HasMaxLength(200);
        approval.Property(a => a.SessionId).HasMaxLength(200);
        approval.Property(a => a.Status).HasMaxLength(20);
        approval.Property(a => a.Grant).HasMaxLength(20);
        approval.HasIndex(a => new { a.OwnerId, a.Status, a.CreatedAt });
        approval.HasIndex(a => new { a.ServerId, a.ToolName, a.Caller, a.Status });
        approval.HasOne<McpServer>().WithMany().HasForeignKey(a => a.ServerId).OnDelete(DeleteBehavior.Cascade);
    }
}

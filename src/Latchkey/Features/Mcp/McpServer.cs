using Latchkey.Features.Accounts;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Latchkey.Features.Mcp;

/// <summary>
/// An upstream MCP server (Streamable HTTP) an account's agents reach through Latchkey's gateway at
/// <c>/mcp/servers/{id}/mcp</c>. The optional default credential is presented on every upstream
/// request that no tool mapping covers.
/// </summary>
public sealed class McpServer
{
    public required string Id { get; init; }
    public required string OwnerId { get; init; }
    public required string Name { get; set; }
    public required string UpstreamUrl { get; set; }
    public string? DefaultCredentialId { get; set; }
    public string? DefaultHeader { get; set; }

    /// <summary>What the gateway does with a tool no policy names (<see cref="Policies.ToolPolicyActions"/>).</summary>
    public string DefaultToolPolicy { get; set; } = Policies.ToolPolicyActions.Allow;

    /// <summary>Where the gateway announces a call waiting for approval (a POST of JSON), if anywhere.</summary>
    public string? ApprovalWebhookUrl { get; set; }

    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; set; }

    public LatchkeyUser? Owner { get; init; }
    public List<McpToolMapping> ToolMappings { get; init; } = [];
    public List<Policies.McpToolPolicy> ToolPolicies { get; init; } = [];

    public CredentialBinding? DefaultBinding => DefaultCredentialId is { } id ? new CredentialBinding(id, DefaultHeader) : null;
}

/// <summary>Which stored credential a tool call carries upstream, and in which header.</summary>
public sealed class McpToolMapping
{
    public required string ServerId { get; init; }
    public required string ToolName { get; init; }
    public required string CredentialId { get; set; }
    /// <summary>Null: <c>Authorization: Bearer</c>. Otherwise the header that carries the bare token.</summary>
    public string? Header { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    public CredentialBinding Binding => new(CredentialId, Header);
}

/// <summary>One audited tool call through the gateway.</summary>
public sealed class McpToolCall
{
    public long Id { get; init; }
    public required string AccountId { get; init; }
    public required string ServerId { get; init; }
    public required string ToolName { get; init; }
    public string? CredentialId { get; init; }
    /// <summary>API key id or OAuth client id the agent called with.</summary>
    public string? Caller { get; init; }
    public required string Outcome { get; init; }
    public int DurationMs { get; init; }
    public DateTimeOffset At { get; init; }
}

internal sealed class McpServerConfiguration : IEntityTypeConfiguration<McpServer>
{
    public void Configure(EntityTypeBuilder<McpServer> server)
    {
        server.ToTable("mcp_servers");
        server.HasKey(s => s.Id);
        server.Property(s => s.Id).HasMaxLength(40);
        server.Property(s => s.Name).HasMaxLength(200);
        server.Property(s => s.UpstreamUrl).HasMaxLength(2000);
        server.Property(s => s.DefaultCredentialId).HasMaxLength(80);
        server.Property(s => s.DefaultHeader).HasMaxLength(100);
        server.Property(s => s.DefaultToolPolicy).HasMaxLength(20).HasDefaultValue(Policies.ToolPolicyActions.Allow);
        server.Property(s => s.ApprovalWebhookUrl).HasMaxLength(2000);
        server.HasIndex(s => s.OwnerId);
        server.HasOne(s => s.Owner).WithMany().HasForeignKey(s => s.OwnerId).OnDelete(DeleteBehavior.Cascade);
        server.HasMany(s => s.ToolMappings).WithOne().HasForeignKey(m => m.ServerId).OnDelete(DeleteBehavior.Cascade);
    }
}

internal sealed class McpToolMappingConfiguration : IEntityTypeConfiguration<McpToolMapping>
{
    public void Configure(EntityTypeBuilder<McpToolMapping> mapping)
    {
        mapping.ToTable("mcp_tool_mappings");
        mapping.HasKey(m => new { m.ServerId, m.ToolName });
        mapping.Property(m => m.ServerId).HasMaxLength(40);
        mapping.Property(m => m.ToolName).HasMaxLength(128);
        mapping.Property(m => m.CredentialId).HasMaxLength(80);
        mapping.Property(m => m.Header).HasMaxLength(100);
    }
}

internal sealed class McpToolCallConfiguration : IEntityTypeConfiguration<McpToolCall>
{
    public void Configure(EntityTypeBuilder<McpToolCall> call)
    {
        call.ToTable("mcp_tool_calls");
        call.HasKey(c => c.Id);
        call.Property(c => c.ServerId).HasMaxLength(40);
        call.Property(c => c.ToolName).HasMaxLength(128);
        call.Property(c => c.CredentialId).HasMaxLength(80);
        call.Property(c => c.Caller).HasMaxLength(200);
        call.Property(c => c.Outcome).HasMaxLength(200);
        call.HasIndex(c => new { c.ServerId, c.At });
        call.HasIndex(c => new { c.AccountId, c.At });
    }
}

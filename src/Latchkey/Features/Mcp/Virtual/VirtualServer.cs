using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Latchkey.Features.Mcp.Virtual;

/// <summary>
/// One gateway URL (<c>/mcp/virtual-servers/{id}/mcp</c>) for the tools of several registered MCP
/// servers: each member's tools appear under its prefix (<c>github__create_issue</c>), and each
/// call goes to its member's upstream with that member's credential and policy.
/// </summary>
public sealed class McpVirtualServer
{
    public required string Id { get; init; }
    public required string OwnerId { get; init; }
    public required string Name { get; set; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; set; }
    public List<McpVirtualMember> Members { get; init; } = [];
}

/// <summary>A registered server within a virtual server, and the prefix its tools carry there.</summary>
public sealed class McpVirtualMember
{
    public required string VirtualServerId { get; init; }
    public required string ServerId { get; init; }
    public required string Prefix { get; set; }
}

internal sealed class McpVirtualServerConfiguration : IEntityTypeConfiguration<McpVirtualServer>
{
    public void Configure(EntityTypeBuilder<McpVirtualServer> server)
    {
        server.ToTable("mcp_virtual_servers");
        server.HasKey(s => s.Id);
        server.Property(s => s.Id).HasMaxLength(40);
        server.Property(s => s.Name).HasMaxLength(200);
        server.HasIndex(s => s.OwnerId);
        server.HasOne<Accounts.LatchkeyUser>().WithMany().HasForeignKey(s => s.OwnerId).OnDelete(DeleteBehavior.Cascade);
        server.HasMany(s => s.Members).WithOne().HasForeignKey(m => m.VirtualServerId).OnDelete(DeleteBehavior.Cascade);
    }
}

internal sealed class McpVirtualMemberConfiguration : IEntityTypeConfiguration<McpVirtualMember>
{
    public void Configure(EntityTypeBuilder<McpVirtualMember> member)
    {
        member.ToTable("mcp_virtual_members");
        member.HasKey(m => new { m.VirtualServerId, m.ServerId });
        member.Property(m => m.VirtualServerId).HasMaxLength(40);
        member.Property(m => m.ServerId).HasMaxLength(40);
        member.Property(m => m.Prefix).HasMaxLength(40);
        member.HasIndex(m => new { m.VirtualServerId, m.Prefix }).IsUnique();
        member.HasIndex(m => m.ServerId);
        member.HasOne<McpServer>().WithMany().HasForeignKey(m => m.ServerId).OnDelete(DeleteBehavior.Cascade);
    }
}

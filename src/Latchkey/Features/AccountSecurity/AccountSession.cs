using Latchkey.Features.Accounts;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Latchkey.Features.AccountSecurity;

/// <summary>
/// One signed-in browser. The session cookie carries only a random key (inside Data Protection's
/// encryption); the row holds the SHA-256 of that key, the sign-in ticket encrypted with Data
/// Protection, and what the profile's session list shows: the device, the address, when it was last seen.
/// Deleting the row ends the session at the browser's next request.
/// </summary>
public sealed class AccountSession
{
    /// <summary>The SHA-256 of the cookie's session key, hex.</summary>
    public required string Id { get; init; }
    public required string UserId { get; init; }
    /// <summary>The authentication ticket, serialized and encrypted (never readable from a database copy alone).</summary>
    public required byte[] Ticket { get; set; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset LastSeenAt { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }
    public string? IpAddress { get; set; }
    public string? UserAgent { get; set; }
}

internal sealed class AccountSessionConfiguration : IEntityTypeConfiguration<AccountSession>
{
    public void Configure(EntityTypeBuilder<AccountSession> session)
    {
        session.ToTable("account_sessions");
        session.HasKey(s => s.Id);
        session.Property(s => s.Id).HasMaxLength(64);
        session.Property(s => s.UserId).HasMaxLength(450);
        session.Property(s => s.IpAddress).HasMaxLength(64);
        session.Property(s => s.UserAgent).HasMaxLength(256);
        session.HasIndex(s => s.UserId);
        session.HasIndex(s => s.ExpiresAt);
        // Deleting an account ends its sessions with it.
        session.HasOne<LatchkeyUser>().WithMany().HasForeignKey(s => s.UserId).OnDelete(DeleteBehavior.Cascade);
    }
}

using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Latchkey.Features.Broker.Connect;

public static class ConnectSessionStatus
{
    /// <summary>Created; its link has not been opened.</summary>
    public const string Pending = "pending";

    /// <summary>Opened in a browser, which holds the session from now on (the link is spent).</summary>
    public const string Opened = "opened";
    public const string Completed = "completed";
    public const string Failed = "failed";
    public const string Expired = "expired";
}

/// <summary>
/// A short-lived, single-use session an app's backend creates so that one of its end users can
/// connect one of a set of providers on Latchkey's connect page, with no API key in the browser.
/// The token is stored only as a SHA-256 hash; opening it binds the session to that browser (a
/// cookie whose hash is kept), so the link cannot be used twice or elsewhere.
/// </summary>
public sealed class ConnectSession
{
    public required string Id { get; init; }
    public required byte[] TokenHash { get; init; }

    /// <summary>The app's account: credentials are stored under it, with the end user's id.</summary>
    public required string AccountId { get; init; }
    public required string EndUserId { get; init; }

    /// <summary>Space-separated provider instance ids the end user may choose from.</summary>
    public required string ProviderIds { get; init; }
    public string Tags { get; init; } = "";

    /// <summary>Where the browser goes when the connection is made (or fails), with the outcome in the query.</summary>
    public string? RedirectUri { get; init; }
    public string Status { get; set; } = ConnectSessionStatus.Pending;
    public byte[]? BrowserHash { get; set; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset ExpiresAt { get; init; }
    public DateTimeOffset? OpenedAt { get; set; }
    public DateTimeOffset? CompletedAt { get; set; }
    public string? CredentialId { get; set; }
    public string? Error { get; set; }

    public IReadOnlyList<string> Providers => ProviderIds.Split(' ', StringSplitOptions.RemoveEmptyEntries);
}

internal sealed class ConnectSessionConfiguration : IEntityTypeConfiguration<ConnectSession>
{
    public void Configure(EntityTypeBuilder<ConnectSession> session)
    {
        session.ToTable("broker_connect_sessions");
        session.HasKey(s => s.Id);
        session.Property(s => s.Id).HasMaxLength(40);
        session.Property(s => s.TokenHash).HasMaxLength(32);
        session.HasIndex(s => s.TokenHash).IsUnique();
        session.Property(s => s.BrowserHash).HasMaxLength(32);
        session.Property(s => s.EndUserId).HasMaxLength(200);
        session.Property(s => s.ProviderIds).HasMaxLength(2000);
        session.Property(s => s.Tags).HasMaxLength(1400);
        session.Property(s => s.RedirectUri).HasMaxLength(2000);
        session.Property(s => s.Status).HasMaxLength(20);
        session.Property(s => s.CredentialId).HasMaxLength(80);
        session.Property(s => s.Error).HasMaxLength(1000);
        session.HasIndex(s => s.AccountId);
        session.HasIndex(s => s.ExpiresAt);
    }
}

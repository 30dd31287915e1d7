using Latchkey.Features.Accounts;
using Latchkey.Features.Broker.Providers;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Latchkey.Features.Broker.Credentials;

public static class CredentialStatus
{
    public const string Active = "active";
    public const string NeedsReauth = "needs_reauth";
    public const string Revoked = "revoked";
}

/// <summary>
/// Tokens an account obtained from a provider. The tokens are encrypted with the vault; nothing
/// else here is secret.
/// </summary>
public sealed class Credential
{
    public const int MaxTags = 20;

    public required string Id { get; init; }
    public required string AccountId { get; init; }
    public required string ProviderInstanceId { get; init; }
    public required string ProviderKey { get; init; }

    /// <summary>How it was obtained and is sent: the provider's auth type at creation (<see cref="AuthTypes"/>).</summary>
    public string Kind { get; init; } = AuthTypes.OAuth2;
    public string Scopes { get; set; } = "";

    /// <summary>The app's own id for the person this credential belongs to (an app serving many end users under one account).</summary>
    public string? EndUserId { get; set; }

    /// <summary>Free tags, stored as <c>|tag|tag|</c> so that one tag is found with a substring match on every database.</summary>
    public string Tags { get; set; } = "";
    public string? ExternalAccountId { get; set; }
    public string? ExternalAccountLabel { get; set; }
    public string Status { get; set; } = CredentialStatus.Active;
    public required string AccessTokenCiphertext { get; set; }
    public string? RefreshTokenCiphertext { get; set; }
    public DateTimeOffset? ExpiresAt { get; set; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? LastRefreshedAt { get; set; }
    public DateTimeOffset? LastUsedAt { get; set; }
    public string? LastError { get; set; }

    /// <summary>When the health check last ran the provider's test request, and what it found.</summary>
    public DateTimeOffset? LastCheckedAt { get; set; }
    public string? LastCheckOutcome { get; set; }

    public LatchkeyUser? Account { get; init; }
    public ProviderInstance? Provider { get; init; }
}

internal sealed class CredentialConfiguration : IEntityTypeConfiguration<Credential>
{
    public void Configure(EntityTypeBuilder<Credential> credential)
    {
        credential.ToTable("broker_credentials");
        credential.HasKey(c => c.Id);
        credential.Property(c => c.Id).HasMaxLength(80);
        credential.Property(c => c.ProviderKey).HasMaxLength(40);
        credential.Property(c => c.Status).HasMaxLength(20);
        credential.Property(c => c.Scopes).HasMaxLength(4000);
        credential.Property(c => c.ExternalAccountId).HasMaxLength(300);
        credential.Property(c => c.ExternalAccountLabel).HasMaxLength(300);
        credential.Property(c => c.LastError).HasMaxLength(1000);
        credential.Property(c => c.Kind).HasMaxLength(20).HasDefaultValue(AuthTypes.OAuth2);
        credential.Property(c => c.EndUserId).HasMaxLength(200);
        credential.Property(c => c.Tags).HasMaxLength(1400).HasDefaultValue("");
        credential.Property(c => c.LastCheckOutcome).HasMaxLength(300);
        credential.HasIndex(c => c.AccountId);
        credential.HasIndex(c => new { c.AccountId, c.EndUserId });
        // The proactive refresh looks for what expires soonest, once a minute.
        credential.HasIndex(c => c.ExpiresAt);
        credential.HasOne(c => c.Account).WithMany().HasForeignKey(c => c.AccountId).OnDelete(DeleteBehavior.Cascade);
        credential.HasOne(c => c.Provider).WithMany().HasForeignKey(c => c.ProviderInstanceId).OnDelete(DeleteBehavior.Cascade);
    }
}

/// <summary>One audited event on a credential (created, read, refreshed, deleted, ...).</summary>
public sealed class CredentialAuditEvent
{
    public long Id { get; init; }
    public required string CredentialId { get; init; }
    public required string AccountId { get; init; }
    public required string Action { get; init; }
    public required string Outcome { get; init; }
    public DateTimeOffset At { get; init; }
}

internal sealed class CredentialAuditEventConfiguration : IEntityTypeConfiguration<CredentialAuditEvent>
{
    public void Configure(EntityTypeBuilder<CredentialAuditEvent> audit)
    {
        audit.ToTable("broker_credential_audit");
        audit.HasKey(a => a.Id);
        audit.Property(a => a.CredentialId).HasMaxLength(80);
        audit.Property(a => a.Action).HasMaxLength(40);
        audit.Property(a => a.Outcome).HasMaxLength(200);
        audit.HasIndex(a => new { a.AccountId, a.At });
    }
}

/// <summary>A credential's tags: up to 20 of letters, digits and <c>-_.:</c>, at most 64 characters each.</summary>
public static partial class CredentialTags
{
    public static string? Check(string[]? tags) =>
        tags is null ? null
        : tags.Length > Credential.MaxTags || tags.Any(t => t is null || !Tag().IsMatch(t))
            ? $"tags must be at most {Credential.MaxTags} tags of 1 to 64 letters, digits, '-', '_', '.' or ':'."
            : null;

    public static string Encode(IEnumerable<string>? tags)
    {
        var distinct = (tags ?? []).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        return distinct.Count == 0 ? "" : $"|{string.Join('|', distinct)}|";
    }

    public static IReadOnlyList<string> Decode(string stored) => stored.Split('|', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>What a stored value contains when it carries <paramref name="tag"/>.</summary>
    public static string Needle(string tag) => $"|{tag}|";

    [System.Text.RegularExpressions.GeneratedRegex("^[A-Za-z0-9_.:-]{1,64}$")]
    private static partial System.Text.RegularExpressions.Regex Tag();
}

internal static class CredentialIds
{
    /// <summary>Readable sequential ids (<c>cred_github_001</c>); a concurrent duplicate fails on the primary key.</summary>
    public static async Task<string> NextAsync(Storage.LatchkeyDbContext db, string providerKey, CancellationToken cancellationToken)
    {
        var prefix = $"cred_{providerKey}_";
        return BrokerIds.Next(prefix, await db.BrokerCredentials.Where(c => c.Id.StartsWith(prefix)).Select(c => c.Id).ToListAsync(cancellationToken));
    }
}

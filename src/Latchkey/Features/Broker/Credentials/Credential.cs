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
    public required string Id { get; init; }
    public required string AccountId { get; init; }
    public required string ProviderInstanceId { get; init; }
    public required string ProviderKey { get; init; }
    public string Scopes { get; set; } = "";
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
        credential.HasIndex(c => c.AccountId);
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

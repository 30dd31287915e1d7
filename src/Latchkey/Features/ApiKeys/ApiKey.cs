using Latchkey.Features.Accounts;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Latchkey.Features.ApiKeys;

/// <summary>
/// A server-to-server credential owned by a user. Only the SHA-256 hash of the key and a short
/// display prefix are stored; the key itself is shown once, when it is created.
/// </summary>
public sealed class ApiKey
{
    public required string Id { get; init; }
    public required string UserId { get; init; }
    public required string Name { get; init; }
    public required string DisplayPrefix { get; init; }
    public required byte[] SecretHash { get; init; }

    /// <summary>Space-separated scope names, in catalog order.</summary>
    public required string Scopes { get; init; }

    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? ExpiresAt { get; init; }
    public DateTimeOffset? LastUsedAt { get; set; }
    public DateTimeOffset? RevokedAt { get; set; }

    public LatchkeyUser? User { get; init; }

    public IReadOnlyList<string> ScopeList => Scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries);
}

internal sealed class ApiKeyConfiguration : IEntityTypeConfiguration<ApiKey>
{
    public void Configure(EntityTypeBuilder<ApiKey> key)
    {
        key.ToTable("api_keys");
        key.HasKey(k => k.Id);
        key.Property(k => k.Id).HasMaxLength(32);
        key.Property(k => k.Name).HasMaxLength(ApiKeyLimits.NameMaxLength).IsRequired();
        key.Property(k => k.DisplayPrefix).HasMaxLength(32).IsRequired();
        key.Property(k => k.SecretHash).HasMaxLength(32).IsRequired();
        key.Property(k => k.Scopes).HasMaxLength(2048).IsRequired();
        key.HasIndex(k => k.SecretHash).IsUnique();
        key.HasIndex(k => k.UserId);
        key.HasOne(k => k.User).WithMany().HasForeignKey(k => k.UserId).OnDelete(DeleteBehavior.Cascade);
        key.Ignore(k => k.ScopeList);
    }
}

public static class ApiKeyLimits
{
    public const int NameMaxLength = 100;
    public const int MaxActiveKeysPerUser = 100;
}

using System.Text.Json;
using Latchkey.Features.Accounts;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Latchkey.Features.Broker.Providers;

/// <summary>
/// A provider this deployment can connect to: a catalog entry (or a custom definition) plus the
/// OAuth client id and (encrypted) secret registered with the provider.
/// </summary>
public sealed class ProviderInstance
{
    public required string Id { get; init; }

    /// <summary>The catalog key, or <c>custom</c>.</summary>
    public required string CatalogKey { get; init; }
    public required string Name { get; set; }
    public required string ClientId { get; set; }
    public required string ClientSecretCiphertext { get; set; }

    /// <summary>The resolved definition (template values filled in), as JSON.</summary>
    public required string DefinitionJson { get; init; }

    /// <summary>The template values given at creation, as JSON.</summary>
    public string TemplateJson { get; set; } = "{}";

    /// <summary>The account that created it; null for providers from configuration or the CLI (visible to all).</summary>
    public string? OwnerId { get; init; }

    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; set; }

    public LatchkeyUser? Owner { get; init; }

    private ProviderDefinition? _definition;

    /// <summary>Parsed once per instance: the definition never changes after creation (a cached credential shares its provider).</summary>
    public ProviderDefinition Definition => _definition ??= JsonSerializer.Deserialize<ProviderDefinition>(DefinitionJson, ProviderCatalog.Json)!;
}

internal sealed class ProviderInstanceConfiguration : IEntityTypeConfiguration<ProviderInstance>
{
    public void Configure(EntityTypeBuilder<ProviderInstance> provider)
    {
        provider.ToTable("broker_providers");
        provider.HasKey(p => p.Id);
        provider.Property(p => p.Id).HasMaxLength(80);
        provider.Property(p => p.CatalogKey).HasMaxLength(40);
        provider.Property(p => p.Name).HasMaxLength(100);
        provider.Property(p => p.ClientId).HasMaxLength(500);
        provider.HasIndex(p => p.OwnerId);
        provider.HasOne(p => p.Owner).WithMany().HasForeignKey(p => p.OwnerId).OnDelete(DeleteBehavior.Cascade);
        provider.Ignore(p => p.Definition);
    }
}

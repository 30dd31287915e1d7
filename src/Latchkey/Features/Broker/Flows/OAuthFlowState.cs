using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Latchkey.Features.Broker.Flows;

public static class FlowStatus
{
    public const string Pending = "pending";
    public const string CodeReceived = "code_received";
    public const string Active = "active";
    public const string Expired = "expired";
    public const string Canceled = "canceled";
    public const string Failed = "failed";
}

/// <summary>
/// One OAuth flow run against a provider for an account. The state value is stored only as a
/// SHA-256 hash; the PKCE verifier and the received code are encrypted.
/// </summary>
public sealed class OAuthFlowState
{
    public required string Id { get; init; }
    public required byte[] StateHash { get; init; }
    public required string AccountId { get; init; }
    public required string ProviderInstanceId { get; init; }
    public required string RedirectUri { get; init; }
    public string Scopes { get; init; } = "";
    public string? CodeVerifierCiphertext { get; init; }
    public string? CodeCiphertext { get; set; }
    public string Status { get; set; } = FlowStatus.Pending;
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset ExpiresAt { get; init; }
    public string? CredentialId { get; set; }
    public string? Error { get; set; }

    /// <summary>End-user id and tags (<see cref="Credentials.CredentialTags"/>) the credential is created with.</summary>
    public string? EndUserId { get; init; }
    public string Tags { get; init; } = "";

    /// <summary>The connect session that started the flow, if one did.</summary>
    public string? ConnectSessionId { get; init; }
}

internal sealed class OAuthFlowStateConfiguration : IEntityTypeConfiguration<OAuthFlowState>
{
    public void Configure(EntityTypeBuilder<OAuthFlowState> flow)
    {
        flow.ToTable("broker_flows");
        flow.HasKey(f => f.Id);
        flow.Property(f => f.Id).HasMaxLength(40);
        flow.Property(f => f.StateHash).HasMaxLength(32);
        flow.HasIndex(f => f.StateHash).IsUnique();
        flow.Property(f => f.Status).HasMaxLength(20);
        flow.Property(f => f.RedirectUri).HasMaxLength(2000);
        flow.Property(f => f.Scopes).HasMaxLength(4000);
        flow.Property(f => f.Error).HasMaxLength(1000);
        flow.Property(f => f.EndUserId).HasMaxLength(200);
        flow.Property(f => f.Tags).HasMaxLength(1400).HasDefaultValue("");
        flow.Property(f => f.ConnectSessionId).HasMaxLength(40);
        flow.HasIndex(f => f.ExpiresAt);
    }
}

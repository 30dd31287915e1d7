using Latchkey.Features.Accounts;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Latchkey.Features.Webhooks;

/// <summary>The events an endpoint can subscribe to.</summary>
public static class WebhookEvents
{
    public const string CredentialCreated = "credential.created";
    public const string CredentialRefreshed = "credential.refreshed";
    public const string CredentialRefreshFailed = "credential.refresh_failed";
    public const string CredentialNeedsReauth = "credential.needs_reauth";
    public const string CredentialDeleted = "credential.deleted";
    public const string ApprovalRequested = "approval.requested";
    public const string ConnectSessionCompleted = "connect_session.completed";

    public static readonly string[] All =
        [CredentialCreated, CredentialRefreshed, CredentialRefreshFailed, CredentialNeedsReauth, CredentialDeleted, ApprovalRequested, ConnectSessionCompleted];
}

public static class DeliveryStatuses
{
    public const string Pending = "pending";
    public const string Delivered = "delivered";
    public const string Failed = "failed";
}

/// <summary>Where an account's events are sent, signed with a secret shown once (stored encrypted: signing needs it back).</summary>
public sealed class WebhookEndpoint
{
    public required string Id { get; init; }
    public required string AccountId { get; init; }
    public required string Url { get; set; }

    /// <summary>Space-separated event types.</summary>
    public required string Events { get; set; }
    public required string SecretCiphertext { get; init; }
    public bool Enabled { get; set; } = true;
    public DateTimeOffset CreatedAt { get; init; }

    public LatchkeyUser? Account { get; init; }

    public bool Wants(string type) => Events.Split(' ').Contains(type, StringComparer.Ordinal);
}

/// <summary>
/// One event for one endpoint: the outbox row. Written when the event happens, claimed by one node
/// per attempt (a lease), retried with backoff until delivered or out of attempts.
/// </summary>
public sealed class WebhookDelivery
{
    public required string Id { get; init; }
    public required string EndpointId { get; init; }
    public required string AccountId { get; init; }
    public required string EventType { get; init; }

    /// <summary>The exact body sent (the signature covers it), without any secret.</summary>
    public required string Payload { get; init; }
    public string Status { get; set; } = DeliveryStatuses.Pending;
    public int Attempts { get; set; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset NextAttemptAt { get; set; }
    public DateTimeOffset? LeaseUntil { get; set; }
    public DateTimeOffset? LastAttemptAt { get; set; }
    public int? LastStatusCode { get; set; }
    public string? LastError { get; set; }
    public DateTimeOffset? DeliveredAt { get; set; }

    public WebhookEndpoint? Endpoint { get; init; }
}

internal sealed class WebhookEndpointConfiguration : IEntityTypeConfiguration<WebhookEndpoint>
{
    public void Configure(EntityTypeBuilder<WebhookEndpoint> endpoint)
    {
        endpoint.ToTable("webhook_endpoints");
        endpoint.HasKey(e => e.Id);
        endpoint.Property(e => e.Id).HasMaxLength(40);
        endpoint.Property(e => e.Url).HasMaxLength(2000);
        endpoint.Property(e => e.Events).HasMaxLength(1000);
        endpoint.HasIndex(e => e.AccountId);
        endpoint.HasOne(e => e.Account).WithMany().HasForeignKey(e => e.AccountId).OnDelete(DeleteBehavior.Cascade);
    }
}

internal sealed class WebhookDeliveryConfiguration : IEntityTypeConfiguration<WebhookDelivery>
{
    public void Configure(EntityTypeBuilder<WebhookDelivery> delivery)
    {
        delivery.ToTable("webhook_deliveries");
        delivery.HasKey(d => d.Id);
        delivery.Property(d => d.Id).HasMaxLength(40);
        delivery.Property(d => d.EventType).HasMaxLength(60);
        delivery.Property(d => d.Status).HasMaxLength(20);
        delivery.Property(d => d.LastError).HasMaxLength(500);
        // The dispatcher's query: what is pending and due, oldest first.
        delivery.HasIndex(d => new { d.Status, d.NextAttemptAt });
        delivery.HasIndex(d => new { d.EndpointId, d.CreatedAt });
        delivery.HasOne(d => d.Endpoint).WithMany().HasForeignKey(d => d.EndpointId).OnDelete(DeleteBehavior.Cascade);
    }
}

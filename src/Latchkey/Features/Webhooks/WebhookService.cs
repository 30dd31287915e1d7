using System.Text.Json;
using Latchkey.Common;
using Latchkey.Features.AgentApi;
using Latchkey.Features.Broker.Vault;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Webhooks;

public sealed record WebhookRequest(string? Url, string[]? Events, bool? Enabled = null);

public sealed record WebhookView(string Id, string Url, IReadOnlyList<string> Events, bool Enabled, DateTimeOffset CreatedAt);

/// <summary>A new endpoint with its signing secret, shown this once.</summary>
public sealed record WebhookCreated(string Id, string Url, IReadOnlyList<string> Events, bool Enabled, DateTimeOffset CreatedAt, string Secret);

public sealed record DeliveryView(string Id, string EventType, string Status, int Attempts, DateTimeOffset CreatedAt, DateTimeOffset? NextAttemptAt,
    DateTimeOffset? LastAttemptAt, int? LastStatusCode, string? LastError, DateTimeOffset? DeliveredAt, JsonElement Payload);

public sealed record WebhookList(IReadOnlyList<WebhookView> Webhooks);

public sealed record DeliveryList(IReadOnlyList<DeliveryView> Deliveries);

/// <summary>An account's webhook endpoints, their delivery log and redelivery.</summary>
public sealed class WebhookService(LatchkeyDbContext db, SecretVault vault, TimeProvider time, OutboundAddressGuard guard, IOptions<WebhookOptions> options, WebhookDispatcher dispatcher)
{
    public const int MaxEndpointsPerAccount = 20;

    public static WebhookView View(WebhookEndpoint endpoint) => new(endpoint.Id, endpoint.Url, endpoint.Events.Split(' '), endpoint.Enabled, endpoint.CreatedAt);

    public static DeliveryView View(WebhookDelivery delivery) => new(delivery.Id, delivery.EventType, delivery.Status, delivery.Attempts, delivery.CreatedAt,
        delivery.Status == DeliveryStatuses.Pending ? delivery.NextAttemptAt : null, delivery.LastAttemptAt, delivery.LastStatusCode, delivery.LastError,
        delivery.DeliveredAt, JsonDocument.Parse(delivery.Payload).RootElement.Clone());

    public Task<List<WebhookEndpoint>> ListAsync(string accountId, CancellationToken cancellationToken) =>
        db.WebhookEndpoints.AsNoTracking().Where(e => e.AccountId == accountId).OrderBy(e => e.CreatedAt).ToListAsync(cancellationToken);

    public Task<WebhookEndpoint?> FindAsync(string accountId, string id, CancellationToken cancellationToken) =>
        db.WebhookEndpoints.FirstOrDefaultAsync(e => e.Id == id && e.AccountId == accountId, cancellationToken);

    public async Task<Outcome<WebhookCreated>> CreateAsync(string accountId, WebhookRequest request, CancellationToken cancellationToken)
    {
        if (await CheckAsync(request, cancellationToken) is { } problem)
        {
            return problem;
        }
        if (await db.WebhookEndpoints.CountAsync(e => e.AccountId == accountId, cancellationToken) >= MaxEndpointsPerAccount)
        {
            return AgentError.Conflict("too_many_webhooks", $"An account has at most {MaxEndpointsPerAccount} webhook endpoints; delete one first.");
        }
        var id = Identifiers.NewHex("wh");
        var secret = WebhookSignature.NewSecret();
        var endpoint = new WebhookEndpoint
        {
            Id = id,
            AccountId = accountId,
            Url = request.Url!.Trim(),
            Events = string.Join(' ', (request.Events ?? WebhookEvents.All).Distinct()),
            SecretCiphertext = await vault.EncryptAsync(secret, SecretContext(id), cancellationToken),
            Enabled = request.Enabled ?? true,
            CreatedAt = time.GetUtcNow(),
        };
        db.WebhookEndpoints.Add(endpoint);
        await db.SaveChangesAsync(cancellationToken);
        return new WebhookCreated(endpoint.Id, endpoint.Url, endpoint.Events.Split(' '), endpoint.Enabled, endpoint.CreatedAt, secret);
    }

    public async Task<Outcome<WebhookEndpoint>> UpdateAsync(string accountId, string id, WebhookRequest request, CancellationToken cancellationToken)
    {
        var endpoint = await FindAsync(accountId, id, cancellationToken);
        if (endpoint is null)
        {
            return NotFound(id);
        }
        if (await CheckAsync(request with { Url = request.Url ?? endpoint.Url }, cancellationToken) is { } problem)
        {
            return problem;
        }
        endpoint.Url = request.Url?.Trim() ?? endpoint.Url;
        endpoint.Events = request.Events is null ? endpoint.Events : string.Join(' ', request.Events.Distinct());
        endpoint.Enabled = request.Enabled ?? endpoint.Enabled;
        await db.SaveChangesAsync(cancellationToken);
        return endpoint;
    }

    public async Task<bool> DeleteAsync(string accountId, string id, CancellationToken cancellationToken) =>
        await db.WebhookEndpoints.Where(e => e.Id == id && e.AccountId == accountId).ExecuteDeleteAsync(cancellationToken) == 1;

    /// <summary>The endpoint's deliveries, newest first.</summary>
    public async Task<Outcome<List<WebhookDelivery>>> DeliveriesAsync(string accountId, string id, int limit, CancellationToken cancellationToken)
    {
        if (await FindAsync(accountId, id, cancellationToken) is null)
        {
            return NotFound(id);
        }
        return await db.WebhookDeliveries.AsNoTracking().Where(d => d.EndpointId == id)
            .OrderByDescending(d => d.CreatedAt).ThenByDescending(d => d.Id).Take(Math.Clamp(limit, 1, 200)).ToListAsync(cancellationToken);
    }

    /// <summary>Sends a delivery again (the same id and body, so receivers can tell it is the same event), now.</summary>
    public async Task<Outcome<WebhookDelivery>> RedeliverAsync(string accountId, string id, string deliveryId, CancellationToken cancellationToken)
    {
        var delivery = await db.WebhookDeliveries.FirstOrDefaultAsync(d => d.Id == deliveryId && d.EndpointId == id && d.AccountId == accountId, cancellationToken);
        if (delivery is null)
        {
            return AgentError.NotFound("delivery", $"Webhook {InputEcho.Quote(id)} has no delivery {InputEcho.Quote(deliveryId)}.");
        }
        delivery.Status = DeliveryStatuses.Pending;
        delivery.NextAttemptAt = time.GetUtcNow();
        // A lease another node holds is left to run out: clearing it would send twice at once.
        await db.SaveChangesAsync(cancellationToken);
        dispatcher.Wake();
        return delivery;
    }

    /// <summary>Removes deliveries that ended (delivered or failed) more than <c>Webhooks:KeepDays</c> ago.</summary>
    public Task<int> PruneAsync(CancellationToken cancellationToken)
    {
        var threshold = time.GetUtcNow().AddDays(-options.Value.KeepDays);
        return db.WebhookDeliveries.Where(d => d.Status != DeliveryStatuses.Pending && d.CreatedAt < threshold).ExecuteDeleteAsync(cancellationToken);
    }

    internal static string SecretContext(string endpointId) => $"webhook:{endpointId}:secret";

    private async Task<AgentError?> CheckAsync(WebhookRequest request, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(request.Url) || request.Url.Length > 2000)
        {
            return AgentError.BadRequest("url is required: where Latchkey POSTs the events.");
        }
        if (request.Events is { } events && (events.Length == 0 || events.Any(e => !WebhookEvents.All.Contains(e))))
        {
            return AgentError.BadRequest($"events must name one or more of {string.Join(", ", WebhookEvents.All)} (omit it for all).");
        }
        var allow = options.Value.AllowPrivateNetworks;
        return await guard.CheckAsync(request.Url.Trim(), allow, cancellationToken) is { } refused
            ? AgentError.BadRequest(refused + (allow ? "" : " (Webhooks:AllowPrivateNetworks permits private and loopback endpoints, and plain http.)"))
            : null;
    }

    private static AgentError NotFound(string id) => AgentError.NotFound("webhook", $"You have no webhook {InputEcho.Quote(id)}.");
}

using System.Net;
using System.Text.Json;
using Latchkey.Features.Webhooks;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using StandardWebhooks;
using StandardWebhooks.Diagnostics;
using static Latchkey.Tests.Infrastructure.TestBroker;

namespace Latchkey.Tests.Webhooks;

/// <summary>Signed webhooks through the outbox, checked by an independent Standard Webhooks implementation.</summary>
public abstract class WebhookTests(LatchkeyServerFixture server) : IAsyncLifetime
{
    private TestOAuthProvider _provider = null!;
    private TestWebhookReceiver _receiver = null!;

    public async Task InitializeAsync()
    {
        _provider = await TestOAuthProvider.StartAsync();
        _receiver = await TestWebhookReceiver.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _receiver.DisposeAsync();
        await _provider.DisposeAsync();
    }

    private async Task<(string Id, string Secret)> AddWebhookAsync(BrokerCaller caller, string[]? events = null)
    {
        var created = await SendAsync(caller, HttpMethod.Post, "/mcp/webhooks",
            events is null ? new { url = _receiver.Url.AbsoluteUri } : new { url = _receiver.Url.AbsoluteUri, events }, HttpStatusCode.Created);
        return (created.GetProperty("id").GetString()!, created.GetProperty("secret").GetString()!);
    }

    private async Task<ReceivedWebhook> ReceivedAsync(Func<ReceivedWebhook, bool> match, string what)
    {
        await Eventually.TrueAsync(() => _receiver.Received.Any(match), TimeSpan.FromSeconds(15), what);
        return _receiver.Received.First(match);
    }

    private static JsonElement Payload(ReceivedWebhook received) => JsonDocument.Parse(received.Body).RootElement;

    [Fact]
    public async Task Credential_events_arrive_signed_with_what_an_app_needs_and_no_secret()
    {
        var caller = await CallerAsync(server);
        var (webhookId, secret) = await AddWebhookAsync(caller);
        Assert.StartsWith("whsec_", secret);

        // The secret is shown once: not listed, not stored as such.
        var listed = await SendAsync(caller, HttpMethod.Get, "/mcp/webhooks", null, HttpStatusCode.OK);
        Assert.Equal(webhookId, listed.GetProperty("webhooks")[0].GetProperty("id").GetString());
        Assert.DoesNotContain(secret, listed.GetRawText());
        var stored = await server.WithDbAsync(db => db.WebhookEndpoints.AsNoTracking().SingleAsync(e => e.Id == webhookId));
        Assert.DoesNotContain(secret[6..], stored.SecretCiphertext);

        var init = await PostAsync(caller, "/mcp/oauth/init", new { provider_id = await AddProviderAsync(caller, _provider), redirect_uri = "https://agent.example.com/cb", end_user_id = "user-9", tags = new[] { "prod" } });
        var state = init.GetProperty("state").GetString()!;
        await PostAsync(caller, "/mcp/oauth/callback", new { code = await VisitAsync(init.GetProperty("auth_url").GetString()!), state });
        var credentialId = (await PostAsync(caller, "/mcp/oauth/exchange-token", new { state })).GetProperty("credential_id").GetString()!;

        var created = await ReceivedAsync(r => Payload(r).GetProperty("type").GetString() == "credential.created", "credential.created arrives");
        // An independent implementation checks the signature (and the timestamp's freshness).
        new StandardWebhook(secret).Verify(created.Body, created.Headers);
        Assert.Throws<WebhookVerificationException>(() => new StandardWebhook(WebhookSignature.NewSecret()).Verify(created.Body, created.Headers));
        var payload = Payload(created);
        Assert.Equal(created.Id, payload.GetProperty("id").GetString());
        var data = payload.GetProperty("data");
        Assert.Equal(credentialId, data.GetProperty("credential_id").GetString());
        Assert.Equal("user-9", data.GetProperty("end_user_id").GetString());
        Assert.Equal("prod", data.GetProperty("tags")[0].GetString());
        Assert.DoesNotContain("provider-access", created.Body);

        // Refreshed, and a refresh the provider refuses: refresh_failed and needs_reauth; then deleted.
        await PostAsync(caller, "/mcp/oauth/refresh-token", new { credential_id = credentialId });
        await ReceivedAsync(r => Payload(r).GetProperty("type").GetString() == "credential.refreshed", "credential.refreshed arrives");
        _provider.FailRefreshWithInvalidGrant = true;
        await ExpireSoonAsync(server, credentialId, seconds: 3600);
        await SendAsync(caller, HttpMethod.Post, "/mcp/oauth/refresh-token", new { credential_id = credentialId }, HttpStatusCode.Conflict);
        var reauth = await ReceivedAsync(r => Payload(r).GetProperty("type").GetString() == "credential.needs_reauth", "credential.needs_reauth arrives");
        Assert.Equal("needs_reauth", Payload(reauth).GetProperty("data").GetProperty("status").GetString());
        await ReceivedAsync(r => Payload(r).GetProperty("type").GetString() == "credential.refresh_failed", "credential.refresh_failed arrives");
        await SendAsync(caller, HttpMethod.Delete, $"/mcp/credentials/{credentialId}", null, HttpStatusCode.NoContent);
        await ReceivedAsync(r => Payload(r).GetProperty("type").GetString() == "credential.deleted", "credential.deleted arrives");
        Assert.All(_receiver.Received, r => new StandardWebhook(secret).Verify(r.Body, r.Headers));
    }

    [Fact]
    public async Task A_failing_receiver_gets_retries_with_backoff_a_delivery_log_and_a_redelivery()
    {
        var caller = await CallerAsync(server);
        var (webhookId, _) = await AddWebhookAsync(caller, ["credential.created"]);
        _receiver.FailNext = 2;
        var providerId = (await SendAsync(caller, HttpMethod.Post, "/mcp/providers",
            new { provider = "custom", custom = _provider.TypedDefinition("api_key", new { test_request = (object?)null }) }, HttpStatusCode.Created)).GetProperty("id").GetString()!;
        await SendAsync(caller, HttpMethod.Post, "/mcp/credentials", new { provider_id = providerId, api_key = "k" }, HttpStatusCode.Created);

        await Eventually.TrueAsync(() => _receiver.Received.Count >= 3, TimeSpan.FromSeconds(20), "two failures, then a delivery");
        Assert.Single(_receiver.Received.Select(r => r.Id).Distinct());
        var log = await SendAsync(caller, HttpMethod.Get, $"/mcp/webhooks/{webhookId}/deliveries", null, HttpStatusCode.OK);
        var delivery = Assert.Single(log.GetProperty("deliveries").EnumerateArray());
        await Eventually.TrueAsync(async () => (await SendAsync(caller, HttpMethod.Get, $"/mcp/webhooks/{webhookId}/deliveries", null, HttpStatusCode.OK))
            .GetProperty("deliveries")[0].GetProperty("status").GetString() == "delivered", TimeSpan.FromSeconds(5), "marked delivered");
        delivery = (await SendAsync(caller, HttpMethod.Get, $"/mcp/webhooks/{webhookId}/deliveries", null, HttpStatusCode.OK)).GetProperty("deliveries")[0];
        Assert.Equal(3, delivery.GetProperty("attempts").GetInt32());
        Assert.Equal(204, delivery.GetProperty("last_status_code").GetInt32());
        Assert.Equal("credential.created", delivery.GetProperty("event_type").GetString());

        var deliveryId = delivery.GetProperty("id").GetString()!;
        await SendAsync(caller, HttpMethod.Post, $"/mcp/webhooks/{webhookId}/deliveries/{deliveryId}/redeliver", null, HttpStatusCode.OK);
        await Eventually.TrueAsync(() => _receiver.Received.Count(r => r.Id == deliveryId) == 4, TimeSpan.FromSeconds(10), "redelivered with the same id");

        // Another account sees none of it.
        var other = await CallerAsync(server);
        await SendAsync(other, HttpMethod.Get, $"/mcp/webhooks/{webhookId}/deliveries", null, HttpStatusCode.NotFound);
        await SendAsync(other, HttpMethod.Post, $"/mcp/webhooks/{webhookId}/deliveries/{deliveryId}/redeliver", null, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Outbox_rows_left_by_a_stopped_node_are_delivered_once_by_competing_dispatchers()
    {
        var caller = await CallerAsync(server);
        var (webhookId, _) = await AddWebhookAsync(caller);
        var accountId = await server.WithDbAsync(db => db.Users.Where(u => u.Email == caller.AccountEmail).Select(u => u.Id).SingleAsync());
        // Written as a node writes them, some with the lease of a node that stopped mid-attempt.
        var ids = Enumerable.Range(0, 30).Select(i => $"msg_{Guid.NewGuid():N}").ToList();
        await server.WithDbAsync(async db =>
        {
            var now = DateTimeOffset.UtcNow;
            db.WebhookDeliveries.AddRange(ids.Select((id, i) => new WebhookDelivery
            {
                Id = id, EndpointId = webhookId, AccountId = accountId, EventType = "credential.created",
                Payload = JsonSerializer.Serialize(new { id, type = "credential.created", data = new { } }), CreatedAt = now, NextAttemptAt = now,
                LeaseUntil = i % 3 == 0 ? now.AddSeconds(-1) : null, Attempts = i % 3 == 0 ? 1 : 0,
            }));
            return await db.SaveChangesAsync();
        });

        var dispatcher = server.Services.GetRequiredService<WebhookDispatcher>();
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => dispatcher.SendDueAsync(CancellationToken.None))));
        await Eventually.TrueAsync(() => ids.All(id => _receiver.Received.Any(r => r.Id == id)), TimeSpan.FromSeconds(15), "every row delivered");
        await Task.Delay(1500);
        Assert.All(ids, id => Assert.Single(_receiver.Received, r => r.Id == id));
    }

    [Fact]
    public async Task Bad_webhook_requests_are_refused_with_the_reason()
    {
        var caller = await CallerAsync(server);
        foreach (var (body, needle) in new (object, string)[]
        {
            (new { }, "url"),
            (new { url = "not a url" }, "URL"),
            (new { url = _receiver.Url.AbsoluteUri, events = new[] { "credential.eaten" } }, "events"),
            (new { url = _receiver.Url.AbsoluteUri, events = Array.Empty<string>() }, "events"),
        })
        {
            var refused = await SendAsync(caller, HttpMethod.Post, "/mcp/webhooks", body, HttpStatusCode.BadRequest);
            Assert.Contains(needle, refused.GetProperty("message").GetString());
        }
        var (id, _) = await AddWebhookAsync(caller);
        var changed = await SendAsync(caller, HttpMethod.Patch, $"/mcp/webhooks/{id}", new { enabled = false, events = new[] { "approval.requested" } }, HttpStatusCode.OK);
        Assert.False(changed.GetProperty("enabled").GetBoolean());
        await SendAsync(caller, HttpMethod.Delete, $"/mcp/webhooks/{id}", null, HttpStatusCode.NoContent);
        await SendAsync(caller, HttpMethod.Delete, $"/mcp/webhooks/{id}", null, HttpStatusCode.NotFound);
    }
}

public sealed class WebhookTestsOnSqlite(SqliteServer server) : WebhookTests(server), IClassFixture<SqliteServer>;

public sealed class WebhookTestsOnPostgres(PostgresServer server) : WebhookTests(server), IClassFixture<PostgresServer>;

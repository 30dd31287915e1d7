using System.Net;
using Latchkey.Features.Broker.Credentials;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static Latchkey.Tests.Infrastructure.TestBroker;

namespace Latchkey.Tests.Broker;

/// <summary>The health check: a credential tried with its provider's test request against the loopback API.</summary>
public abstract class CredentialHealthTests(LatchkeyServerFixture server) : IAsyncLifetime
{
    private TestOAuthProvider _provider = null!;

    public async Task InitializeAsync() => _provider = await TestOAuthProvider.StartAsync();

    public async Task DisposeAsync() => await _provider.DisposeAsync();

    private async Task<string> TypedCredentialAsync(BrokerCaller caller, string key)
    {
        var providerId = (await SendAsync(caller, HttpMethod.Post, "/mcp/providers", new { provider = "custom", custom = _provider.TypedDefinition("api_key") }, HttpStatusCode.Created))
            .GetProperty("id").GetString()!;
        return (await SendAsync(caller, HttpMethod.Post, "/mcp/credentials", new { provider_id = providerId, api_key = key }, HttpStatusCode.Created)).GetProperty("id").GetString()!;
    }

    [Fact]
    public async Task A_revoked_key_is_found_by_the_check_marked_needs_reauth_and_announced()
    {
        await using var receiver = await TestWebhookReceiver.StartAsync();
        var caller = await CallerAsync(server);
        await SendAsync(caller, HttpMethod.Post, "/mcp/webhooks", new { url = receiver.Url.AbsoluteUri, events = new[] { "credential.needs_reauth" } }, HttpStatusCode.Created);
        var valid = true;
        _provider.ApiAccepts = headers => valid && headers["X-API-Key"].ToString() == "live-key";
        var credentialId = await TypedCredentialAsync(caller, "live-key");

        var healthy = await SendAsync(caller, HttpMethod.Post, $"/mcp/credentials/{credentialId}/check", null, HttpStatusCode.OK);
        Assert.Equal("ok", healthy.GetProperty("last_check_outcome").GetString());
        Assert.Equal("active", healthy.GetProperty("status").GetString());

        // The provider stops accepting the key: the check finds it before an agent does.
        valid = false;
        var broken = await SendAsync(caller, HttpMethod.Post, $"/mcp/credentials/{credentialId}/check", null, HttpStatusCode.OK);
        Assert.Equal("needs_reauth", broken.GetProperty("status").GetString());
        Assert.Contains("401", broken.GetProperty("last_check_outcome").GetString());
        await Eventually.TrueAsync(() => receiver.Received.Any(r => r.Body.Contains(credentialId, StringComparison.Ordinal)), TimeSpan.FromSeconds(10), "needs_reauth webhook");
        var read = await SendAsync(caller, HttpMethod.Post, $"/mcp/credentials/{credentialId}/access-token", null, HttpStatusCode.Conflict);
        Assert.Equal("needs_reauth", read.GetProperty("error").GetString());
    }

    [Fact]
    public async Task An_oauth_token_the_provider_dropped_is_refreshed_by_the_check_and_stays_active()
    {
        var caller = await CallerAsync(server);
        var oauth = await SendAsync(caller, HttpMethod.Post, "/mcp/providers", new
        {
            provider = "custom", client_id = TestOAuthProvider.ClientId, client_secret = TestOAuthProvider.ClientSecret,
            custom = new Dictionary<string, object?>(System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, object?>>(System.Text.Json.JsonSerializer.Serialize(_provider.Definition()))!)
            {
                ["test_request"] = new { method = "GET", path = "/me" },
            },
        }, HttpStatusCode.Created);
        var credentialId = (await ConnectAsync(caller, oauth.GetProperty("id").GetString()!)).Exchange.GetProperty("credential_id").GetString()!;
        await ExpireSoonAsync(server, credentialId, seconds: 3600);
        _provider.InvalidateAccessTokens();
        var before = _provider.RefreshCalls;

        var checkedCredential = await SendAsync(caller, HttpMethod.Post, $"/mcp/credentials/{credentialId}/check", null, HttpStatusCode.OK);

        Assert.Equal("active", checkedCredential.GetProperty("status").GetString());
        Assert.Equal("ok", checkedCredential.GetProperty("last_check_outcome").GetString());
        Assert.Equal(before + 1, _provider.RefreshCalls);
    }

    [Fact]
    public async Task The_job_checks_what_is_due_and_a_provider_that_is_down_changes_nothing_but_the_outcome()
    {
        var caller = await CallerAsync(server);
        _provider.ApiAccepts = headers => headers["X-API-Key"].ToString() == "job-key";
        var checkedByJob = await TypedCredentialAsync(caller, "job-key");
        // Never checked (created without trying), so due at once.
        await server.WithDbAsync(db => db.BrokerCredentials.Where(c => c.Id == checkedByJob).ExecuteUpdateAsync(s => s
            .SetProperty(c => c.LastCheckedAt, (DateTimeOffset?)null).SetProperty(c => c.LastCheckOutcome, (string?)null)));
        var down = new Dictionary<string, object?>(_provider.TypedDefinition("api_key")) { ["api_base_url"] = "http://127.0.0.1:1/api" };
        var downProvider = (await SendAsync(caller, HttpMethod.Post, "/mcp/providers", new { provider = "custom", custom = down }, HttpStatusCode.Created)).GetProperty("id").GetString()!;
        var unreachable = (await SendAsync(caller, HttpMethod.Post, "/mcp/credentials", new { provider_id = downProvider, api_key = "k", verify = false }, HttpStatusCode.Created))
            .GetProperty("id").GetString()!;

        var untestableProvider = (await SendAsync(caller, HttpMethod.Post, "/mcp/providers",
            new { provider = "custom", custom = _provider.TypedDefinition("api_key", new { test_request = (object?)null }) }, HttpStatusCode.Created)).GetProperty("id").GetString()!;
        var untestable = (await SendAsync(caller, HttpMethod.Post, "/mcp/credentials", new { provider_id = untestableProvider, api_key = "k" }, HttpStatusCode.Created))
            .GetProperty("id").GetString()!;

        await server.Services.GetRequiredService<HealthCheckJob>().RunNowAsync(CancellationToken.None);

        var stored = await server.WithDbAsync(db => db.BrokerCredentials.AsNoTracking().Where(c => c.Id == checkedByJob || c.Id == unreachable || c.Id == untestable).ToDictionaryAsync(c => c.Id));
        // One without a test request goes to the back of the queue rather than filling every run.
        Assert.Equal("no test request", stored[untestable].LastCheckOutcome);
        Assert.Equal("ok", stored[checkedByJob].LastCheckOutcome);
        Assert.NotNull(stored[checkedByJob].LastCheckedAt);
        Assert.Equal("active", stored[unreachable].Status);
        Assert.Contains("could not be reached", stored[unreachable].LastCheckOutcome);
    }
}

public sealed class CredentialHealthTestsOnSqlite(SqliteServer server) : CredentialHealthTests(server), IClassFixture<SqliteServer>;

public sealed class CredentialHealthTestsOnPostgres(PostgresServer server) : CredentialHealthTests(server), IClassFixture<PostgresServer>;

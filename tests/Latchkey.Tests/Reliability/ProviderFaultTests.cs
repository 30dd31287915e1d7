using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Latchkey.Features.Broker.Credentials;
using Latchkey.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;

namespace Latchkey.Tests.Reliability;

/// <summary>
/// A provider that is slow, down, or answers 429: retried, then reported as 502, with the stored
/// tokens untouched and the credential still usable once the provider is back. (5xx and
/// invalid_grant are covered in BrokerFlowTests.)
/// </summary>
public abstract class ProviderFaultTests(LatchkeyServerFixture server) : IAsyncLifetime
{
    /// <summary>
    /// Short provider timeouts, so that a slow provider is a failure within seconds (and not so
    /// short that a busy machine's ordinary answer times out while connecting).
    /// </summary>
    internal static readonly Dictionary<string, string?> Settings = new()
    {
        ["Broker:ProviderTimeoutSeconds"] = "2",
        ["Broker:ProviderAttempts"] = "2",
    };

    private TestOAuthProvider _provider = null!;

    public async Task InitializeAsync() => _provider = await TestOAuthProvider.StartAsync();

    public async Task DisposeAsync() => await _provider.DisposeAsync();

    private async Task<(BrokerCaller Caller, string CredentialId, Credential Stored)> ConnectedAsync(TestOAuthProvider provider)
    {
        var caller = await TestBroker.CallerAsync(server);
        var credentialId = await TestBroker.ConnectedCredentialAsync(caller, provider);
        return (caller, credentialId, await StoredAsync(credentialId));
    }

    private Task<Credential> StoredAsync(string credentialId) =>
        server.WithDbAsync(db => db.BrokerCredentials.AsNoTracking().SingleAsync(c => c.Id == credentialId));

    private async Task AssertFailsUntouchedAsync(BrokerCaller caller, string credentialId, Credential before, string? expectedInMessage = null)
    {
        var response = await caller.Client.PostAsJsonAsync("/mcp/oauth/refresh-token", new { credential_id = credentialId });
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadGateway, body);
        var error = JsonDocument.Parse(body).RootElement;
        Assert.Equal("provider_error", error.GetProperty("error").GetString());
        if (expectedInMessage is not null)
        {
            Assert.Contains(expectedInMessage, error.GetProperty("message").GetString(), StringComparison.OrdinalIgnoreCase);
        }

        var after = await StoredAsync(credentialId);
        Assert.Equal(before.AccessTokenCiphertext, after.AccessTokenCiphertext);
        Assert.Equal(before.RefreshTokenCiphertext, after.RefreshTokenCiphertext);
        Assert.Equal(before.ExpiresAt, after.ExpiresAt);
        Assert.Equal(CredentialStatus.Active, after.Status);
        Assert.NotNull(after.LastError);
        // The current token is still handed out: it has not expired.
        var token = await TestBroker.PostAsync(caller, $"/mcp/credentials/{credentialId}/access-token", new { });
        Assert.False(string.IsNullOrEmpty(token.GetProperty("access_token").GetString()));
    }

    [Fact]
    public async Task A_provider_answering_429_is_retried_and_then_reported_with_tokens_untouched()
    {
        var (caller, credentialId, before) = await ConnectedAsync(_provider);
        _provider.FailureStatus = 429;

        // One 429, then an answer: the retry succeeds.
        _provider.FailNextTokenCallsWith500 = 1;
        var recovered = await TestBroker.PostAsync(caller, "/mcp/oauth/refresh-token", new { credential_id = credentialId });
        Assert.Equal("active", recovered.GetProperty("status").GetString());
        Assert.NotEqual(before.AccessTokenCiphertext, (await StoredAsync(credentialId)).AccessTokenCiphertext);

        // 429 on every attempt (outside the window in which a forced refresh returns the last one): 502, nothing stored changes.
        await TestBroker.ExpireSoonAsync(server, credentialId, seconds: 3600);
        var current = await StoredAsync(credentialId);
        _provider.FailNextTokenCallsWith500 = 10;
        await AssertFailsUntouchedAsync(caller, credentialId, current, "429");
    }

    [Fact]
    public async Task A_slow_provider_times_out_and_is_reported_with_tokens_untouched()
    {
        var (caller, credentialId, before) = await ConnectedAsync(_provider);
        _provider.RefreshDelay = TimeSpan.FromSeconds(6);
        var calls = _provider.RefreshCalls;
        await AssertFailsUntouchedAsync(caller, credentialId, before);
        Assert.Equal(2, _provider.RefreshCalls - calls);
    }

    [Fact]
    public async Task A_provider_that_is_down_is_reported_and_its_credential_works_again_when_it_is_back()
    {
        var (caller, credentialId, before) = await ConnectedAsync(_provider);
        await _provider.DisposeAsync();
        await AssertFailsUntouchedAsync(caller, credentialId, before);
        // The test's own provider is gone; the credential's row is what matters, and it is intact.
        _provider = await TestOAuthProvider.StartAsync();
    }
}

public sealed class ProviderFaultSqliteServer : SqliteServer
{
    protected override void ConfigureServer(WebApplicationBuilder builder) => builder.Configuration.AddInMemoryCollection(ProviderFaultTests.Settings);
}

public sealed class ProviderFaultPostgresServer : PostgresServer
{
    protected override void ConfigureServer(WebApplicationBuilder builder) => builder.Configuration.AddInMemoryCollection(ProviderFaultTests.Settings);
}

public sealed class ProviderFaultTestsOnSqlite(ProviderFaultSqliteServer server) : ProviderFaultTests(server), IClassFixture<ProviderFaultSqliteServer>;

public sealed class ProviderFaultTestsOnPostgres(ProviderFaultPostgresServer server) : ProviderFaultTests(server), IClassFixture<ProviderFaultPostgresServer>;

using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static Latchkey.Tests.Infrastructure.TestBroker;

namespace Latchkey.Tests.Broker;

/// <summary>The broker wire contract against a real OAuth server on loopback.</summary>
public abstract class BrokerFlowTests(LatchkeyServerFixture server) : IAsyncLifetime
{
    private TestOAuthProvider _provider = null!;

    public async Task InitializeAsync() => _provider = await TestOAuthProvider.StartAsync();

    public async Task DisposeAsync() => await _provider.DisposeAsync();

    private Task<BrokerCaller> CallerAsync() => TestBroker.CallerAsync(server);

    private Task<string> AddProviderAsync(BrokerCaller caller, string? tokenPath = null, string tokenAuth = "post") =>
        TestBroker.AddProviderAsync(caller, _provider, tokenPath, tokenAuth);

    [Fact]
    public async Task The_whole_flow_stores_an_encrypted_credential_and_hands_out_its_token()
    {
        var caller = await CallerAsync();
        var providerId = await AddProviderAsync(caller);
        Assert.Matches("^provider_custom_[0-9]{3}$", providerId);

        var init = await PostAsync(caller, "/mcp/oauth/init", new { provider_id = providerId, redirect_uri = "https://agent.example.com/oauth/done", scopes = new[] { "read" } });
        var authUrl = new Uri(init.GetProperty("auth_url").GetString()!);
        var query = QueryHelpers.ParseQuery(authUrl.Query);
        Assert.Equal(TestOAuthProvider.ClientId, query["client_id"]);
        Assert.Equal("read", query["scope"]);
        Assert.Equal("S256", query["code_challenge_method"]);
        Assert.Equal(init.GetProperty("state").GetString(), query["state"]);
        Assert.Equal(600, init.GetProperty("expires_in").GetInt32());
        Assert.True(init.GetProperty("state").GetString()!.Length >= 22, "at least 128 bits of state");

        var state = init.GetProperty("state").GetString()!;
        var code = await VisitAsync(authUrl.AbsoluteUri);
        Assert.Equal("pending", (await PostAsync(caller, "/mcp/oauth/status", new { state })).GetProperty("status").GetString());
        await PostAsync(caller, "/mcp/oauth/callback", new { code, state });
        var exchange = await PostAsync(caller, "/mcp/oauth/exchange-token", new { state });

        var credentialId = exchange.GetProperty("credential_id").GetString()!;
        Assert.Matches("^cred_custom_[0-9]{3}$", credentialId);
        Assert.Equal("active", exchange.GetProperty("status").GetString());
        Assert.Equal(providerId, exchange.GetProperty("provider_id").GetString());
        Assert.Equal(["read"], exchange.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));
        Assert.True(exchange.GetProperty("expires_at").GetDateTimeOffset() > DateTimeOffset.UtcNow.AddMinutes(50));
        // RFC 3339 in UTC with whole seconds, as most APIs print instants.
        Assert.Matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$", exchange.GetProperty("expires_at").GetString());
        Assert.Single(_provider.VerifiedPkce);

        var byState = await PostAsync(caller, "/mcp/oauth/status", new { state });
        Assert.Equal("active", byState.GetProperty("status").GetString());
        Assert.Equal(credentialId, byState.GetProperty("credential_id").GetString());

        var metadata = JsonDocument.Parse(await caller.Client.GetStringAsync($"/mcp/credentials/{credentialId}")).RootElement;
        Assert.Equal("4242", metadata.GetProperty("external_account_id").GetString());
        Assert.Equal("octo-tester", metadata.GetProperty("external_account_label").GetString());
        Assert.DoesNotContain("provider-access", metadata.GetRawText());

        var token = await PostAsync(caller, $"/mcp/credentials/{credentialId}/access-token", new { });
        Assert.Equal(_provider.LastIssuedAccessToken, token.GetProperty("access_token").GetString());

        // Encryption at rest: no token or client secret appears anywhere in the stored rows.
        var stored = await server.WithDbAsync(async db => string.Join('\n',
            (await db.BrokerCredentials.AsNoTracking().ToListAsync()).Select(c => c.AccessTokenCiphertext + c.RefreshTokenCiphertext + c.Scopes + c.ExternalAccountLabel).Concat(
            (await db.BrokerProviders.AsNoTracking().ToListAsync()).Select(p => p.ClientSecretCiphertext + p.DefinitionJson))));
        Assert.DoesNotContain(_provider.LastIssuedAccessToken!, stored);
        Assert.DoesNotContain("provider-refresh", stored);
        Assert.DoesNotContain(TestOAuthProvider.ClientSecret, stored);
        if (server is SqliteServer sqlite)
        {
            // The database files themselves (with the write-ahead log) hold no token either.
            var files = string.Concat(new[] { sqlite.DatabaseFile, sqlite.DatabaseFile + "-wal" }.Where(File.Exists).Select(f =>
            {
                using var stream = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                using var reader = new StreamReader(stream, Encoding.Latin1);
                return reader.ReadToEnd();
            }));
            Assert.Contains(credentialId, files);
            Assert.DoesNotContain(_provider.LastIssuedAccessToken!, files);
            Assert.DoesNotContain("provider-refresh-", files);
            Assert.DoesNotContain(TestOAuthProvider.ClientSecret, files);
        }

        await server.Services.GetRequiredService<Latchkey.Features.Broker.Credentials.CredentialAudit>().FlushAsync();
        var audited = await server.WithDbAsync(db => db.BrokerCredentialAudit.Where(a => a.CredentialId == credentialId).Select(a => a.Action).ToListAsync());
        Assert.Contains("created", audited);
        Assert.Contains("read", audited);
    }

    [Theory]
    [InlineData("form", null, "post")]
    [InlineData("slack", "authed_user", "post")]
    [InlineData("basic", null, "basic")]
    [InlineData("non_expiring", null, "post")]
    public async Task Provider_quirks_are_read_correctly(string mode, string? tokenPath, string tokenAuth)
    {
        _provider.Mode = mode;
        var caller = await CallerAsync();
        var providerId = await AddProviderAsync(caller, tokenPath, tokenAuth);

        var (exchange, _) = await ConnectAsync(caller, providerId);

        var credentialId = exchange.GetProperty("credential_id").GetString()!;
        var token = await PostAsync(caller, $"/mcp/credentials/{credentialId}/access-token", new { });
        Assert.Equal(_provider.LastIssuedAccessToken, token.GetProperty("access_token").GetString());
        if (mode == "non_expiring")
        {
            Assert.Equal(JsonValueKind.Null, exchange.GetProperty("expires_at").ValueKind);
        }
        if (mode == "slack")
        {
            var metadata = JsonDocument.Parse(await caller.Client.GetStringAsync($"/mcp/credentials/{credentialId}")).RootElement;
            Assert.Equal("U123", metadata.GetProperty("external_account_id").GetString());
        }
    }

    [Fact]
    public async Task An_expiring_credential_is_refreshed_once_for_many_concurrent_readers_and_the_rotated_token_kept()
    {
        var caller = await CallerAsync();
        var providerId = await AddProviderAsync(caller);
        var (exchange, _) = await ConnectAsync(caller, providerId);
        var credentialId = exchange.GetProperty("credential_id").GetString()!;
        await ExpireSoonAsync(credentialId);
        _provider.RefreshDelay = TimeSpan.FromMilliseconds(300);
        var before = _provider.RefreshCalls;

        var reads = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => PostAsync(caller, $"/mcp/credentials/{credentialId}/access-token", new { })));

        Assert.Equal(before + 1, _provider.RefreshCalls);
        Assert.Single(reads.Select(r => r.GetProperty("access_token").GetString()).Distinct());
        Assert.Equal(_provider.LastIssuedAccessToken, reads[0].GetProperty("access_token").GetString());

        // A forced refresh right after that one returns its result without calling the provider.
        var coalesced = await PostAsync(caller, "/mcp/oauth/refresh-token", new { credential_id = credentialId });
        Assert.Equal("active", coalesced.GetProperty("status").GetString());
        Assert.Equal(before + 1, _provider.RefreshCalls);

        // The rotated refresh token was saved: a forced refresh later works again.
        await ExpireSoonAsync(credentialId);
        var refreshed = await PostAsync(caller, "/mcp/oauth/refresh-token", new { credential_id = credentialId });
        Assert.Equal("active", refreshed.GetProperty("status").GetString());
        Assert.Equal(before + 2, _provider.RefreshCalls);
    }

    [Fact]
    public async Task Each_burst_of_forced_refreshes_makes_exactly_one_provider_call()
    {
        var caller = await CallerAsync();
        var credentialId = (await ConnectAsync(caller, await AddProviderAsync(caller))).Exchange.GetProperty("credential_id").GetString()!;
        for (var burst = 0; burst < 10; burst++)
        {
            // As if the last refresh was long ago: each burst starts outside the coalescing window.
            await ExpireSoonAsync(credentialId, seconds: 3600);
            var before = _provider.RefreshCalls;
            var results = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => PostAsync(caller, "/mcp/oauth/refresh-token", new { credential_id = credentialId })));
            Assert.All(results, r => Assert.Equal("active", r.GetProperty("status").GetString()));
            Assert.True(_provider.RefreshCalls - before == 1, $"burst {burst}: {_provider.RefreshCalls - before} provider refreshes");
            Assert.Single(results.Select(r => r.GetProperty("expires_at").GetString()).Distinct());
        }
    }

    [Fact]
    public async Task A_short_lived_token_is_refreshed_within_half_its_lifetime_not_on_every_read()
    {
        var caller = await CallerAsync();
        _provider.ExpiresIn = 60;
        var credentialId = (await ConnectAsync(caller, await AddProviderAsync(caller))).Exchange.GetProperty("credential_id").GetString()!;
        var before = _provider.RefreshCalls;

        // The default margin (300 s) is longer than the token lives: capped at 30 s, reads now use the stored token.
        for (var read = 0; read < 5; read++)
        {
            await PostAsync(caller, $"/mcp/credentials/{credentialId}/access-token", new { });
        }
        Assert.Equal(before, _provider.RefreshCalls);

        // 20 s left of 60: within the capped margin, so the next read refreshes, once.
        await server.WithDbAsync(db => db.BrokerCredentials.Where(c => c.Id == credentialId).ExecuteUpdateAsync(s => s
            .SetProperty(c => c.ExpiresAt, DateTimeOffset.UtcNow.AddSeconds(20)).SetProperty(c => c.LastRefreshedAt, DateTimeOffset.UtcNow.AddSeconds(-40))));
        await PostAsync(caller, $"/mcp/credentials/{credentialId}/access-token", new { });
        await PostAsync(caller, $"/mcp/credentials/{credentialId}/access-token", new { });
        Assert.Equal(before + 1, _provider.RefreshCalls);
    }

    [Fact]
    public async Task Invalid_grant_marks_the_credential_needs_reauth_and_keeps_its_tokens()
    {
        var caller = await CallerAsync();
        var (exchange, _) = await ConnectAsync(caller, await AddProviderAsync(caller));
        var credentialId = exchange.GetProperty("credential_id").GetString()!;
        var storedBefore = await server.WithDbAsync(db => db.BrokerCredentials.AsNoTracking().SingleAsync(c => c.Id == credentialId));
        _provider.FailRefreshWithInvalidGrant = true;

        var response = await caller.Client.PostAsJsonAsync("/mcp/oauth/refresh-token", new { credential_id = credentialId });

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        var refusal = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("needs_reauth", refusal.GetProperty("error").GetString());
        // The message names the credential and its provider instance (a deployment may have several of one kind).
        Assert.Contains(credentialId, refusal.GetProperty("message").GetString());
        Assert.Contains((await server.WithDbAsync(db => db.BrokerCredentials.Where(c => c.Id == credentialId).Select(c => c.ProviderInstanceId).SingleAsync())), refusal.GetProperty("message").GetString());
        var storedAfter = await server.WithDbAsync(db => db.BrokerCredentials.AsNoTracking().SingleAsync(c => c.Id == credentialId));
        Assert.Equal("needs_reauth", storedAfter.Status);
        Assert.Equal(storedBefore.AccessTokenCiphertext, storedAfter.AccessTokenCiphertext);
        Assert.Equal(storedBefore.RefreshTokenCiphertext, storedAfter.RefreshTokenCiphertext);
        Assert.Equal("needs_reauth", (await PostAsync(caller, "/mcp/oauth/status", new { credential_id = credentialId })).GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_failing_provider_is_retried_then_reported_as_502_with_tokens_untouched()
    {
        var caller = await CallerAsync();
        var (exchange, _) = await ConnectAsync(caller, await AddProviderAsync(caller));
        var credentialId = exchange.GetProperty("credential_id").GetString()!;
        var before = await server.WithDbAsync(db => db.BrokerCredentials.AsNoTracking().SingleAsync(c => c.Id == credentialId));

        _provider.FailNextTokenCallsWith500 = 2;
        var recovered = await PostAsync(caller, "/mcp/oauth/refresh-token", new { credential_id = credentialId });
        Assert.Equal("active", recovered.GetProperty("status").GetString());

        var current = await server.WithDbAsync(db => db.BrokerCredentials.AsNoTracking().SingleAsync(c => c.Id == credentialId));
        await ExpireSoonAsync(credentialId, seconds: 3600);
        _provider.FailNextTokenCallsWith500 = 10;
        var failed = await caller.Client.PostAsJsonAsync("/mcp/oauth/refresh-token", new { credential_id = credentialId });
        Assert.Equal(HttpStatusCode.BadGateway, failed.StatusCode);
        var error = JsonDocument.Parse(await failed.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("provider_error", error.GetProperty("error").GetString());
        Assert.Contains("503", error.GetProperty("message").GetString());
        var after = await server.WithDbAsync(db => db.BrokerCredentials.AsNoTracking().SingleAsync(c => c.Id == credentialId));
        Assert.Equal(current.AccessTokenCiphertext, after.AccessTokenCiphertext);
        Assert.Equal("active", after.Status);
        Assert.NotEqual(before.AccessTokenCiphertext, current.AccessTokenCiphertext);
        _provider.FailNextTokenCallsWith500 = 0;
    }

    [Fact]
    public async Task Out_of_order_calls_expired_and_replayed_states_get_the_contracts_statuses()
    {
        var caller = await CallerAsync();
        var providerId = await AddProviderAsync(caller);
        var init = await PostAsync(caller, "/mcp/oauth/init", new { provider_id = providerId, redirect_uri = "https://agent.example.com/cb" });
        var state = init.GetProperty("state").GetString()!;
        var code = await VisitAsync(init.GetProperty("auth_url").GetString()!);

        await AssertErrorAsync(caller, "/mcp/oauth/exchange-token", new { state }, HttpStatusCode.Conflict, "callback_required");
        await PostAsync(caller, "/mcp/oauth/callback", new { code, state });
        await AssertErrorAsync(caller, "/mcp/oauth/callback", new { code, state }, HttpStatusCode.Conflict, "state_already_used");
        await PostAsync(caller, "/mcp/oauth/exchange-token", new { state });
        await AssertErrorAsync(caller, "/mcp/oauth/exchange-token", new { state }, HttpStatusCode.Conflict, "state_already_used");

        // Cancel, then callback: 409.
        var second = await PostAsync(caller, "/mcp/oauth/init", new { provider_id = providerId, redirect_uri = "https://agent.example.com/cb" });
        var secondState = second.GetProperty("state").GetString()!;
        Assert.Equal("canceled", (await PostAsync(caller, "/mcp/oauth/cancel", new { state = secondState })).GetProperty("status").GetString());
        await AssertErrorAsync(caller, "/mcp/oauth/callback", new { code = "x", state = secondState }, HttpStatusCode.Conflict, "flow_canceled");
        Assert.Equal("canceled", (await PostAsync(caller, "/mcp/oauth/status", new { state = secondState })).GetProperty("status").GetString());

        // Expired state: 410.
        var third = await PostAsync(caller, "/mcp/oauth/init", new { provider_id = providerId, redirect_uri = "https://agent.example.com/cb" });
        var thirdState = third.GetProperty("state").GetString()!;
        var past = DateTimeOffset.UtcNow.AddSeconds(-1);
        var hash = Latchkey.Common.SecretHash.Compute(thirdState);
        await server.WithDbAsync(db => db.BrokerFlows.Where(f => f.StateHash == hash).ExecuteUpdateAsync(s => s.SetProperty(f => f.ExpiresAt, past)));
        await AssertErrorAsync(caller, "/mcp/oauth/callback", new { code = "x", state = thirdState }, HttpStatusCode.Gone, "state_expired");
        Assert.Equal("expired", (await PostAsync(caller, "/mcp/oauth/status", new { state = thirdState })).GetProperty("status").GetString());
    }

    [Fact]
    public async Task Another_accounts_state_and_credential_are_not_found()
    {
        var alice = await CallerAsync();
        var bob = await CallerAsync();
        var providerId = await AddProviderAsync(alice);
        var (exchange, state) = await ConnectAsync(alice, providerId);
        var credentialId = exchange.GetProperty("credential_id").GetString()!;

        await AssertErrorAsync(bob, "/mcp/oauth/status", new { state }, HttpStatusCode.NotFound, "state_not_found");
        await AssertErrorAsync(bob, "/mcp/oauth/status", new { credential_id = credentialId }, HttpStatusCode.NotFound, "credential_not_found");
        await AssertErrorAsync(bob, $"/mcp/credentials/{credentialId}/access-token", new { }, HttpStatusCode.NotFound, "credential_not_found");
        await AssertErrorAsync(bob, "/mcp/oauth/init", new { provider_id = providerId, redirect_uri = "https://x.example/cb" }, HttpStatusCode.NotFound, "provider_not_found");
        Assert.Equal(HttpStatusCode.NotFound, (await bob.Client.DeleteAsync($"/mcp/credentials/{credentialId}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await alice.Client.PostAsJsonAsync($"/mcp/credentials/{credentialId}/access-token", new { })).StatusCode);
    }

    [Fact]
    public async Task Deleting_a_credential_revokes_it_at_the_provider()
    {
        var caller = await CallerAsync();
        var (exchange, _) = await ConnectAsync(caller, await AddProviderAsync(caller));
        var credentialId = exchange.GetProperty("credential_id").GetString()!;

        Assert.Equal(HttpStatusCode.NoContent, (await caller.Client.DeleteAsync($"/mcp/credentials/{credentialId}")).StatusCode);

        Assert.Contains(_provider.Revoked, t => t.StartsWith("provider-refresh-", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.NotFound, (await caller.Client.GetAsync($"/mcp/credentials/{credentialId}")).StatusCode);
    }

    [Fact]
    public async Task Deleting_the_account_revokes_its_credentials_at_the_provider_and_removes_its_providers()
    {
        var caller = await CallerAsync();
        var providerId = await AddProviderAsync(caller);
        var (exchange, _) = await ConnectAsync(caller, providerId);
        var credentialId = exchange.GetProperty("credential_id").GetString()!;
        var revokedBefore = _provider.Revoked.Count;

        var plan = await server.RunCliAsync(["users", "delete", caller.AccountEmail]);
        var deleted = await server.RunCliAsync(["users", "delete", caller.AccountEmail, "--yes"]);

        Assert.Contains("1 connected credential(s), revoked at the provider", plan.Output);
        Assert.Contains("1 provider configuration(s) it added", plan.Output);
        Assert.True(deleted.ExitCode == 0, deleted.Error);
        Assert.True(_provider.Revoked.Count > revokedBefore, "the credential's token was revoked at the provider");
        Assert.Equal(0, await server.WithDbAsync(db => db.BrokerCredentials.CountAsync(c => c.Id == credentialId)));
        Assert.Equal(0, await server.WithDbAsync(db => db.BrokerProviders.CountAsync(p => p.Id == providerId)));
        await Eventually.TrueAsync(async () => (await caller.Client.GetAsync("/mcp/credentials")).StatusCode == HttpStatusCode.Unauthorized,
            TimeSpan.FromSeconds(5), "the deleted account's API key refused");
    }

    [Theory]
    [InlineData("{\"provider_id\": ", "invalid_request", HttpStatusCode.BadRequest)]
    [InlineData("{\"provider_id\":\"provider_nope_001\",\"redirect_uri\":\"https://a.example/cb\"}", "provider_not_found", HttpStatusCode.NotFound)]
    [InlineData("{\"provider_id\":\"x\",\"redirect_uri\":\"not a url\"}", "invalid_request", HttpStatusCode.BadRequest)]
    [InlineData("{\"provider_id\":\"x\",\"redirect_uri\":\"https://a.example/cb\",\"admin\":true}", "invalid_request", HttpStatusCode.BadRequest)]
    public async Task Bad_input_gets_the_broker_error_shape(string body, string error, HttpStatusCode status)
    {
        var caller = await CallerAsync();

        var response = await caller.Client.PostAsync("/mcp/oauth/init", new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(status, response.StatusCode);
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(error, json.GetProperty("error").GetString());
        Assert.False(string.IsNullOrEmpty(json.GetProperty("message").GetString()));
    }

    [Fact]
    public async Task A_missing_or_wrong_api_key_gets_401_in_the_broker_shape()
    {
        foreach (var key in new string?[] { null, ApiKeyFormatForTests.Unknown })
        {
            var client = server.CreateClient();
            if (key is not null)
            {
                client.DefaultRequestHeaders.Add("X-API-Key", key);
            }
            var response = await client.PostAsJsonAsync("/mcp/oauth/init", new { provider_id = "x" });
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal("unauthorized", json.GetProperty("error").GetString());
            Assert.True(json.TryGetProperty("message", out _));
        }
    }

    [Fact]
    public async Task Latchkey_itself_works_as_a_provider_code_refresh_and_revocation_included()
    {
        // The provider: Latchkey's own authorization server, with an app registered for the broker.
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await OAuthClient.RegisterAppAsync(owner, ["IDENTITY"], redirectUri: "https://agent.example.com/oauth/done", name: "Broker client");
        var caller = await CallerAsync();
        var providerResponse = await caller.Client.PostAsJsonAsync("/mcp/providers", new
        {
            provider = "custom",
            client_id = app.ClientId,
            client_secret = app.ClientSecret,
            name = "Another Latchkey",
            custom = new
            {
                name = "Latchkey",
                authorize_url = $"{server.BaseAddress}auth/authorize",
                token_url = $"{server.BaseAddress}api/oauth/token",
                revocation_url = $"{server.BaseAddress}api/oauth/revoke",
                default_scopes = new[] { "IDENTITY" },
                pkce = true,
                token_auth = "basic",
                expires = true,
                refreshable = true,
            },
        });
        var providerId = JsonDocument.Parse(await providerResponse.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;

        var init = await PostAsync(caller, "/mcp/oauth/init", new { provider_id = providerId, redirect_uri = "https://agent.example.com/oauth/done" });
        var person = await TestAccounts.SignUpAsync(server);
        var outcome = await OAuthClient.AuthorizeAsync(person.Session, new Uri(init.GetProperty("auth_url").GetString()!).PathAndQuery);
        var state = init.GetProperty("state").GetString()!;
        Assert.Equal(state, outcome.Query["state"]);
        await PostAsync(caller, "/mcp/oauth/callback", new { code = outcome.Query["code"], state });
        var exchange = await PostAsync(caller, "/mcp/oauth/exchange-token", new { state });
        var credentialId = exchange.GetProperty("credential_id").GetString()!;
        Assert.Contains("IDENTITY", exchange.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));

        var token = (await PostAsync(caller, $"/mcp/credentials/{credentialId}/access-token", new { })).GetProperty("access_token").GetString()!;
        Assert.StartsWith("lk_at_", token);
        Assert.Equal(HttpStatusCode.OK, (await OAuthClient.CallMeAsync(server.CreateClient(), token)).StatusCode);

        await PostAsync(caller, "/mcp/oauth/refresh-token", new { credential_id = credentialId });
        var refreshed = (await PostAsync(caller, $"/mcp/credentials/{credentialId}/access-token", new { })).GetProperty("access_token").GetString()!;
        Assert.NotEqual(token, refreshed);
        Assert.Equal(HttpStatusCode.OK, (await OAuthClient.CallMeAsync(server.CreateClient(), refreshed)).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await caller.Client.DeleteAsync($"/mcp/credentials/{credentialId}")).StatusCode);
        // Deleting revoked the refresh token at the provider.
        var refreshStatuses = await server.WithDbAsync(db => db.OAuthTokens.AsNoTracking()
            .Where(t => t.Application!.ClientId == app.ClientId && t.Type == OpenIddict.Abstractions.OpenIddictConstants.TokenTypeIdentifiers.RefreshToken)
            .Select(t => t.Status).ToListAsync());
        Assert.Contains("revoked", refreshStatuses);
    }

    [Fact]
    public async Task The_external_api_lists_starts_and_removes_integrations_by_scope()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var (brokerKey, _) = await TestAccounts.CreateKeyAsync(account, "IDENTITY");
        var caller = new BrokerCaller(server.CreateClient(), account.Email, brokerKey, account);
        caller.Client.DefaultRequestHeaders.Add("X-API-Key", brokerKey);
        var providerId = await AddProviderAsync(caller);
        var (exchange, _) = await ConnectAsync(caller, providerId);
        var credentialId = exchange.GetProperty("credential_id").GetString()!;

        var (readKey, _) = await TestAccounts.CreateKeyAsync(account, "READ_INTEGRATIONS");
        var reader = server.CreateClient();
        reader.DefaultRequestHeaders.Add("X-API-Key", readKey);
        var list = JsonDocument.Parse(await reader.GetStringAsync("/external-api/v1/integrations")).RootElement;
        Assert.Equal(credentialId, list.GetProperty("credentials")[0].GetProperty("id").GetString());
        Assert.Equal(HttpStatusCode.Forbidden, (await reader.DeleteAsync($"/external-api/v1/integrations/{credentialId}")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await reader.PostAsJsonAsync("/external-api/v1/integrations", new { provider_id = providerId, redirect_uri = "https://a.example/cb" })).StatusCode);

        var (manageKey, _) = await TestAccounts.CreateKeyAsync(account, "MANAGE_INTEGRATIONS", "DELETE_INTEGRATIONS");
        var manager = server.CreateClient();
        manager.DefaultRequestHeaders.Add("X-API-Key", manageKey);
        var started = await manager.PostAsJsonAsync("/external-api/v1/integrations", new { provider_id = providerId, redirect_uri = "https://a.example/cb" });
        Assert.Equal(HttpStatusCode.OK, started.StatusCode);
        Assert.StartsWith(_provider.BaseAddress.AbsoluteUri, JsonDocument.Parse(await started.Content.ReadAsStringAsync()).RootElement.GetProperty("auth_url").GetString());
        Assert.Equal(HttpStatusCode.NoContent, (await manager.DeleteAsync($"/external-api/v1/integrations/{credentialId}")).StatusCode);
    }

    [Fact]
    public async Task The_cli_lists_providers_and_credentials_and_rotates_the_vault_master_key()
    {
        var caller = await CallerAsync();
        var (exchange, _) = await ConnectAsync(caller, await AddProviderAsync(caller));
        var credentialId = exchange.GetProperty("credential_id").GetString()!;

        var catalog = await server.RunCliAsync(["providers", "catalog"]);
        Assert.Contains("github", catalog.Output);
        Assert.Contains("(needs: shop)", catalog.Output);
        Assert.Contains("provider_custom_", (await server.RunCliAsync(["providers", "list"])).Output);
        Assert.Contains(credentialId, (await server.RunCliAsync(["credentials", "list", "--user", caller.AccountEmail])).Output);

        // A custom provider from a definition file; a typed-in one needs no client id or secret.
        var definitionFile = Path.Combine(Path.GetTempPath(), $"latchkey-definition-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(definitionFile, JsonSerializer.Serialize(_provider.TypedDefinition("api_key", new { name = "Internal tools API" })));
        try
        {
            var custom = await server.RunCliAsync(["providers", "create", "--provider", "custom", "--definition", definitionFile]);
            Assert.True(custom.ExitCode == 0, custom.Output + custom.Error);
            Assert.Matches("Created provider_custom_[0-9]{3} \\(Internal tools API\\)", custom.Output);
            var oauth = await server.RunCliAsync(["providers", "create", "--provider", "custom", "--definition", definitionFile, "--client-id", "x"]);
            Assert.Equal(2, oauth.ExitCode);
            Assert.Contains("--client-secret-stdin", oauth.Error);
        }
        finally
        {
            File.Delete(definitionFile);
        }
        var missingFile = await server.RunCliAsync(["providers", "create", "--provider", "custom", "--definition", "/nonexistent/definition.json"]);
        Assert.NotEqual(0, missingFile.ExitCode);

        var rotate = await server.RunCliAsync(["vault", "rotate-key"]);
        Assert.Equal(0, rotate.ExitCode);
        Assert.Contains("re-wrapped", rotate.Output);

        // A node that starts after the rotation reads the credential through the re-wrapped data key.
        var (node, address) = await server.StartAnotherNodeAsync();
        await using (node)
        {
            var client = new HttpClient { BaseAddress = address };
            client.DefaultRequestHeaders.Add("X-API-Key", caller.Client.DefaultRequestHeaders.GetValues("X-API-Key").Single());
            var token = await client.PostAsJsonAsync($"/mcp/credentials/{credentialId}/access-token", new { });
            Assert.Equal(HttpStatusCode.OK, token.StatusCode);
            // Stopped before it is disposed, as a host is: its background loops end cleanly.
            await node.StopAsync();
        }
    }

    private Task<int> ExpireSoonAsync(string credentialId, int seconds = 30) => TestBroker.ExpireSoonAsync(server, credentialId, seconds);

    private static async Task AssertErrorAsync(BrokerCaller caller, string path, object body, HttpStatusCode status, string error)
    {
        var response = await caller.Client.PostAsJsonAsync(path, body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"{path}: {(int)response.StatusCode} {text}");
        Assert.Equal(error, JsonDocument.Parse(text).RootElement.GetProperty("error").GetString());
    }
}

internal static class ApiKeyFormatForTests
{
    public static string Unknown => Latchkey.Features.ApiKeys.ApiKeyService.Format.Generate();
}

public sealed class BrokerFlowTestsOnSqlite(SqliteServer server) : BrokerFlowTests(server), IClassFixture<SqliteServer>;

public sealed class BrokerFlowTestsOnPostgres(PostgresServer server) : BrokerFlowTests(server), IClassFixture<PostgresServer>;

using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Latchkey.Cluster;
using Latchkey.Features.Broker.Credentials;
using Latchkey.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit.Abstractions;

namespace Latchkey.Tests.Reliability;

/// <summary>
/// Three nodes on one PostgreSQL: the fixture's node and two more. None of them leads the
/// background jobs, so that no job touches what a test measures; the job test starts nodes
/// that do.
/// </summary>
public sealed class ThreeNodes : PostgresServer
{
    public List<(WebApplication App, Uri BaseAddress)> Others { get; } = [];

    public IReadOnlyList<Uri> Addresses => [BaseAddress, .. Others.Select(o => o.BaseAddress)];

    public IReadOnlyList<IServiceProvider> NodeServices => [Services, .. Others.Select(o => o.App.Services)];

    protected override void ConfigureServer(WebApplicationBuilder builder) =>
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Cluster:LeadJobs"] = "false",
            ["Cluster:CheckSeconds"] = "1",
        });

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        Others.Add(await StartAnotherNodeAsync());
        Others.Add(await StartAnotherNodeAsync());
    }

    public override async Task DisposeAsync()
    {
        foreach (var (app, _) in Others)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
        await base.DisposeAsync();
    }
}

/// <summary>Several nodes behind one load balancer: shared keys, caches invalidated across nodes, one refresh, one job runner.</summary>
public sealed class MultiNodeTests(ThreeNodes cluster, ITestOutputHelper output) : IClassFixture<ThreeNodes>, IAsyncLifetime
{
    private TestOAuthProvider _provider = null!;

    public async Task InitializeAsync()
    {
        _provider = await TestOAuthProvider.StartAsync();
        // Every node must hear the others before a test relies on it.
        await Eventually.TrueAsync(() => cluster.NodeServices.All(s => s.GetRequiredService<ClusterLink>().IsListening), TimeSpan.FromSeconds(10), "nodes linked");
    }

    public async Task DisposeAsync() => await _provider.DisposeAsync();

    private static HttpClient Client(Uri node, CookieContainer? cookies = null) =>
        new(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = cookies ?? new CookieContainer(), UseCookies = true }) { BaseAddress = node };

    [Fact]
    public async Task A_mixed_workload_spread_over_three_nodes_works_on_every_node()
    {
        var nodes = cluster.Addresses;
        // A browser session started on one node is honoured by the others (shared Data Protection keys).
        var cookies = new CookieContainer();
        var owner = await TestAccounts.SignUpAsync(cluster);
        var app = await OAuthClient.RegisterAppAsync(owner);
        var user = await TestAccounts.SignUpAsync(cluster);
        var userOnNode1 = user with { Session = Client(nodes[1], cookies) };
        var signIn = await TestAccounts.SignInAsync(userOnNode1.Session, user.Email, user.Password);
        Assert.Equal(HttpStatusCode.Redirect, signIn.StatusCode);
        // Authorized on node 2 with the cookie node 1 issued, the code redeemed on node 0.
        var (code, verifier) = await OAuthClient.GetCodeAsync(userOnNode1 with { Session = Client(nodes[2], cookies) }, app);
        var tokens = await OAuthClient.RedeemCodeAsync(Client(nodes[0]), app, code, verifier);

        var caller = await TestBroker.CallerAsync(cluster);
        var credentialId = await TestBroker.ConnectedCredentialAsync(caller, _provider);

        var refreshToken = tokens.GetProperty("refresh_token").GetString()!;
        var requests = 0;
        for (var round = 0; round < 12; round++)
        {
            var issuing = Client(nodes[round % 3]);
            var checking = Client(nodes[(round + 1) % 3]);
            var using_ = Client(nodes[(round + 2) % 3]);

            // Refresh rotation: each node redeems the refresh token another node issued.
            var response = await OAuthClient.TokenAsync(issuing, OAuthClient.RefreshParameters(app, refreshToken));
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"round {round}: {body}");
            using var refreshed = JsonDocument.Parse(body);
            var accessToken = refreshed.RootElement.GetProperty("access_token").GetString()!;
            refreshToken = refreshed.RootElement.GetProperty("refresh_token").GetString()!;

            var introspection = await OAuthClient.IntrospectAsync(checking, app, accessToken);
            Assert.True(introspection.GetProperty("active").GetBoolean(), $"round {round}: introspection on another node");
            Assert.Equal(HttpStatusCode.OK, (await OAuthClient.CallMeAsync(using_, accessToken)).StatusCode);

            using_.DefaultRequestHeaders.Add("X-API-Key", caller.ApiKey);
            var read = await using_.PostAsync($"/mcp/credentials/{credentialId}/access-token", null);
            Assert.True(read.StatusCode == HttpStatusCode.OK, $"round {round}: {await read.Content.ReadAsStringAsync()}");
            requests += 4;
        }
        output.WriteLine($"{requests} requests over 3 nodes");
    }

    [Fact]
    public async Task A_revoked_token_disabled_app_or_revoked_key_is_refused_by_every_node_within_a_second()
    {
        var issued = await OAuthClient.IssueAsync(cluster);
        var accessToken = issued.Tokens.GetProperty("access_token").GetString()!;
        var (apiKey, apiKeyId) = await TestAccounts.CreateKeyAsync(issued.User, "IDENTITY");
        var others = cluster.Others.Select(o => Client(o.BaseAddress)).ToList();

        // Warm every node's caches: without the announcement they would answer from them for
        // Caching:MaxAgeSeconds (10 s).
        foreach (var node in others)
        {
            await AssertOkAsync(OAuthClient.CallMeAsync(node, accessToken), $"{node.BaseAddress} with the token");
            await AssertOkAsync(TestAccounts.CallMeWithKeyAsync(node, apiKey), $"{node.BaseAddress} with the API key");
        }

        var revoke = await cluster.CreateClient().PostAsync(Features.AuthorizationServer.AuthorizationServerSetup.RevokePath,
            new FormUrlEncodedContent(OAuthClient.ClientParameters(issued.App, accessToken)));
        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        await AssertRefusedEverywhereWithinASecondAsync(others, node => OAuthClient.CallMeAsync(node, accessToken), "revoked access token");

        Assert.Equal(HttpStatusCode.NoContent, (await issued.User.Session.DeleteAsync($"/api/keys/{apiKeyId}")).StatusCode);
        await AssertRefusedEverywhereWithinASecondAsync(others, node => TestAccounts.CallMeWithKeyAsync(node, apiKey), "revoked API key");

        // A second grant of the same app, then the owner disables the app.
        var (code, verifier) = await OAuthClient.GetCodeAsync(issued.User, issued.App);
        var second = (await OAuthClient.RedeemCodeAsync(cluster.CreateClient(), issued.App, code, verifier)).GetProperty("access_token").GetString()!;
        foreach (var node in others)
        {
            await AssertOkAsync(OAuthClient.CallMeAsync(node, second), $"{node.BaseAddress} with the second token");
        }
        Assert.Equal(HttpStatusCode.OK, (await issued.Owner.Session.PostAsync($"/api/oauth/apps/{issued.App.ClientId}/disable", null)).StatusCode);
        await AssertRefusedEverywhereWithinASecondAsync(others, node => OAuthClient.CallMeAsync(node, second), "token of a disabled app");
    }

    private async Task AssertRefusedEverywhereWithinASecondAsync(List<HttpClient> nodes, Func<HttpClient, Task<HttpResponseMessage>> call, string what)
    {
        var clock = Stopwatch.StartNew();
        var pending = nodes.ToList();
        while (pending.Count > 0 && clock.Elapsed < TimeSpan.FromSeconds(5))
        {
            foreach (var node in pending.ToList())
            {
                if ((await call(node)).StatusCode == HttpStatusCode.Unauthorized)
                {
                    pending.Remove(node);
                }
            }
        }
        output.WriteLine($"{what}: refused by every node after {clock.Elapsed.TotalMilliseconds:F0} ms");
        Assert.Empty(pending);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"{what}: took {clock.Elapsed.TotalMilliseconds:F0} ms to be refused everywhere");
    }

    [Fact]
    public async Task Fifty_concurrent_reads_on_each_of_three_nodes_of_an_expiring_credential_cause_one_provider_call()
    {
        var caller = await TestBroker.CallerAsync(cluster);
        // Made to expire within the refresh margin; the refreshed token lives an hour.
        var credentialId = await TestBroker.ConnectedCredentialAsync(caller, _provider);
        await TestBroker.ExpireSoonAsync(cluster, credentialId);
        _provider.ExpiresIn = 3600;
        _provider.RefreshDelay = TimeSpan.FromMilliseconds(300);
        var before = _provider.RefreshCalls;
        var clock = Stopwatch.StartNew();

        var reads = cluster.Addresses.SelectMany(address =>
        {
            var node = Client(address);
            node.DefaultRequestHeaders.Add("X-API-Key", caller.ApiKey);
            return Enumerable.Range(0, 50).Select(async _ =>
            {
                var response = await node.PostAsync($"/mcp/credentials/{credentialId}/access-token", null);
                var body = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.OK, $"{address}: {(int)response.StatusCode} {body}");
                return JsonDocument.Parse(body).RootElement.GetProperty("access_token").GetString()!;
            });
        }).ToList();
        var tokens = await Task.WhenAll(reads);

        Assert.Equal(1, _provider.RefreshCalls - before);
        Assert.All(tokens, token => Assert.Equal(_provider.LastIssuedAccessToken, token));
        output.WriteLine($"{tokens.Length} concurrent reads on 3 nodes in {clock.ElapsedMilliseconds} ms, {_provider.RefreshCalls - before} provider refresh");
    }

    [Fact]
    public async Task Each_burst_of_forced_refreshes_spread_over_three_nodes_makes_one_provider_call()
    {
        var caller = await TestBroker.CallerAsync(cluster);
        var credentialId = await TestBroker.ConnectedCredentialAsync(caller, _provider);
        var nodes = cluster.Addresses.Select(address =>
        {
            var node = Client(address);
            node.DefaultRequestHeaders.Add("X-API-Key", caller.ApiKey);
            return node;
        }).ToList();
        for (var burst = 0; burst < 5; burst++)
        {
            await TestBroker.ExpireSoonAsync(cluster, credentialId, seconds: 3600);
            var before = _provider.RefreshCalls;
            var calls = Enumerable.Range(0, 12).Select(async i =>
            {
                var response = await nodes[i % nodes.Count].PostAsJsonAsync("/mcp/oauth/refresh-token", new { credential_id = credentialId });
                Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
            });
            await Task.WhenAll(calls);
            Assert.True(_provider.RefreshCalls - before == 1, $"burst {burst}: {_provider.RefreshCalls - before} provider refreshes");
        }
    }

    [Fact]
    public async Task Background_jobs_run_on_one_node_and_move_to_another_when_it_stops()
    {
        var jobNode = new Dictionary<string, string?>
        {
            ["Cluster:LeadJobs"] = "true",
            ["Cluster:CheckSeconds"] = "1",
            ["Broker:ProactiveRefreshSeconds"] = "1",
        };
        var candidates = new List<WebApplication> { (await cluster.StartAnotherNodeAsync(jobNode)).App, (await cluster.StartAnotherNodeAsync(jobNode)).App };
        try
        {
            await Eventually.TrueAsync(() => candidates.Count(c => Link(c).IsLeader) == 1, TimeSpan.FromSeconds(10), "one leader");
            var leader = candidates.Single(c => Link(c).IsLeader);
            var follower = candidates.Single(c => c != leader);
            await Eventually.TrueAsync(() => Job(leader).CompletedRuns >= 2, TimeSpan.FromSeconds(10), "the leader runs the job");
            Assert.Equal(0, Job(follower).CompletedRuns);
            Assert.All(cluster.NodeServices, services => Assert.Equal(0, Job(services).CompletedRuns));

            // The leader goes away: the follower takes over and refreshes what is about to expire, once.
            await leader.StopAsync();
            await leader.DisposeAsync();
            candidates.Remove(leader);
            await Eventually.TrueAsync(() => Link(follower).IsLeader, TimeSpan.FromSeconds(10), "the follower takes over");

            // Connected with a token living 4 s (refreshed within half its lifetime plus a run); the
            // refreshed one lasts an hour, so that however soon the job runs, it refreshes once.
            var caller = await TestBroker.CallerAsync(cluster);
            var before = _provider.RefreshCalls;
            _provider.ExpiresIn = 4;
            _provider.RefreshExpiresIn = 3600;
            var credentialId = await TestBroker.ConnectedCredentialAsync(caller, _provider);
            await Eventually.TrueAsync(() => _provider.RefreshCalls > before, TimeSpan.FromSeconds(10), "the job refreshes the credential");
            var runs = Job(follower).CompletedRuns;
            await Eventually.TrueAsync(() => Job(follower).CompletedRuns >= runs + 2, TimeSpan.FromSeconds(10), "more runs");
            Assert.Equal(1, _provider.RefreshCalls - before);
            var stored = await cluster.WithDbAsync(db => Task.FromResult(db.BrokerCredentials.Single(c => c.Id == credentialId)));
            Assert.NotNull(stored.LastRefreshedAt);
        }
        finally
        {
            foreach (var candidate in candidates)
            {
                await candidate.StopAsync();
                await candidate.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_key_rotation_reaches_every_running_node_and_older_tokens_stay_valid()
    {
        var before = await OAuthClient.IssueAsync(cluster);
        var rotation = await cluster.RunCliAsync(["server-keys", "rotate"]);
        Assert.True(rotation.ExitCode == 0, rotation.Error);
        var newest = await cluster.WithDbAsync(db => Task.FromResult(db.ServerKeys.Where(k => k.Kind == "signing").OrderByDescending(k => k.Id).First().Id));

        foreach (var address in cluster.Addresses)
        {
            var node = Client(address);
            await Eventually.TrueAsync(async () =>
            {
                var jwks = await node.GetAsync("/.well-known/jwks");
                var body = await jwks.Content.ReadAsStringAsync();
                Assert.True(jwks.IsSuccessStatusCode, $"{address}/.well-known/jwks: {(int)jwks.StatusCode} {body}");
                return body.Contains(newest, StringComparison.Ordinal);
            }, TimeSpan.FromSeconds(10), $"{address} publishes {newest}");
        }
        // A token issued after the rotation on one node is accepted by the others, and so is one from before it.
        var (code, verifier) = await OAuthClient.GetCodeAsync(before.User, before.App);
        var after = (await OAuthClient.RedeemCodeAsync(Client(cluster.Addresses[1]), before.App, code, verifier)).GetProperty("access_token").GetString()!;
        foreach (var address in cluster.Addresses)
        {
            await AssertOkAsync(OAuthClient.CallMeAsync(Client(address), after), $"{address} with a token issued after the rotation");
            await AssertOkAsync(OAuthClient.CallMeAsync(Client(address), before.Tokens.GetProperty("access_token").GetString()!), $"{address} with a token issued before it");
        }
    }

    [Fact]
    public async Task A_flow_started_on_a_node_that_dies_is_finished_on_the_others()
    {
        var caller = await TestBroker.CallerAsync(cluster);
        var providerId = await TestBroker.AddProviderAsync(caller, _provider);
        var (doomed, doomedAddress) = await cluster.StartAnotherNodeAsync();
        var onDoomed = Client(doomedAddress);
        onDoomed.DefaultRequestHeaders.Add("X-API-Key", caller.ApiKey);
        var init = await onDoomed.PostAsJsonAsync("/mcp/oauth/init", new { provider_id = providerId, redirect_uri = "https://agent.example.com/oauth/done" });
        using var initBody = JsonDocument.Parse(await init.Content.ReadAsStringAsync());
        var state = initBody.RootElement.GetProperty("state").GetString()!;
        var code = await TestBroker.VisitAsync(initBody.RootElement.GetProperty("auth_url").GetString()!);

        await doomed.StopAsync();
        await doomed.DisposeAsync();

        var onOne = new BrokerCaller(Client(cluster.Addresses[1]), caller.AccountEmail, caller.ApiKey, caller.Account);
        onOne.Client.DefaultRequestHeaders.Add("X-API-Key", caller.ApiKey);
        var onTwo = onOne with { Client = Client(cluster.Addresses[2]) };
        onTwo.Client.DefaultRequestHeaders.Add("X-API-Key", caller.ApiKey);
        await TestBroker.PostAsync(onOne, "/mcp/oauth/callback", new { code, state });
        var exchange = await TestBroker.PostAsync(onTwo, "/mcp/oauth/exchange-token", new { state });
        var token = await TestBroker.PostAsync(onOne, $"/mcp/credentials/{exchange.GetProperty("credential_id").GetString()}/access-token", new { });
        Assert.Equal(_provider.LastIssuedAccessToken, token.GetProperty("access_token").GetString());
    }

    [Fact]
    public async Task Refreshed_tokens_survive_losing_the_session_that_held_the_row_lock()
    {
        // The provider has rotated the refresh token when the lock's session dies: the new tokens
        // are written again on a new connection instead of being lost.
        var caller = await TestBroker.CallerAsync(cluster);
        var credentialId = await TestBroker.ConnectedCredentialAsync(caller, _provider);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _provider.RefreshGate = gate;

        var calls = _provider.RefreshCalls;
        var refresh = caller.Client.PostAsJsonAsync("/mcp/oauth/refresh-token", new { credential_id = credentialId });
        // While the provider works on the refresh, the session holding the lock is ended.
        await Eventually.TrueAsync(() => _provider.RefreshCalls > calls, TimeSpan.FromSeconds(5), "the refresh reaching the provider");
        await using (var admin = new Npgsql.NpgsqlConnection(cluster.ConnectionString))
        {
            await admin.OpenAsync();
            var terminated = 0;
            await Eventually.TrueAsync(async () =>
            {
                await using var kill = new Npgsql.NpgsqlCommand(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() " +
                    "AND state = 'idle in transaction' " +
                    // SELECT ... FOR UPDATE takes this lock on the table, and holds it to the end of the transaction.
                    "AND pid IN (SELECT pid FROM pg_locks WHERE relation = 'broker_credentials'::regclass AND mode = 'RowShareLock')", admin);
                terminated = Convert.ToInt32(await kill.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
                return terminated > 0;
            }, TimeSpan.FromSeconds(10), "the session holding the row lock");
        }
        _provider.RefreshGate = null;
        gate.SetResult();
        var response = await refresh;

        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        var token = await TestBroker.PostAsync(caller, $"/mcp/credentials/{credentialId}/access-token", new { });
        Assert.Equal(_provider.LastIssuedAccessToken, token.GetProperty("access_token").GetString());
        // The rotated refresh token was kept: refreshing again works at the provider.
        await TestBroker.PostAsync(caller, "/mcp/oauth/refresh-token", new { credential_id = credentialId });
    }

    /// <summary>Fails with the node, status and body, which say more than a status code alone.</summary>
    private static async Task AssertOkAsync(Task<HttpResponseMessage> call, string what)
    {
        var response = await call;
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{what}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }

    private static ClusterLink Link(WebApplication app) => app.Services.GetRequiredService<ClusterLink>();

    private static ProactiveRefresh Job(WebApplication app) => Job(app.Services);

    private static ProactiveRefresh Job(IServiceProvider services) => services.GetServices<IHostedService>().OfType<ProactiveRefresh>().Single();
}

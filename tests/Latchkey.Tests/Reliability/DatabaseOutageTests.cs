using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Latchkey.Storage;
using Latchkey.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using Xunit.Abstractions;

namespace Latchkey.Tests.Reliability;

/// <summary>A server on a PostgreSQL cluster of its own, which the tests stop and start again.</summary>
public sealed class RestartablePostgresServer : LatchkeyServerFixture
{
    public DedicatedPostgres Database { get; private set; } = null!;

    public override string Provider => StorageProvider.Postgres;

    // EF Core logs every command that fails while the database is away (about a thousand lines
    // here); the test judges the outage by the answers, and the server's own 503 log stays.
    protected override void ConfigureServer(WebApplicationBuilder builder) =>
        builder.Configuration["Logging:LogLevel:Microsoft.EntityFrameworkCore"] = "None";

    protected override async Task<string> CreateDatabaseAsync()
    {
        Database = await DedicatedPostgres.StartAsync();
        return new NpgsqlConnectionStringBuilder(Database.ConnectionString) { Timeout = 5 }.ConnectionString;
    }

    protected override async Task DropDatabaseAsync()
    {
        ClearOwnPool();
        await Database.DisposeAsync();
    }
}

/// <summary>PostgreSQL stopped and started again under load: 503 while it is away, recovery without help, nothing lost or doubled.</summary>
public sealed class DatabaseOutageTests(RestartablePostgresServer server, ITestOutputHelper output) : IClassFixture<RestartablePostgresServer>
{
    [Fact]
    public async Task Under_load_a_database_restart_gives_503_then_the_node_recovers_with_nothing_lost_or_duplicated()
    {
        // Stored before the outage: a grant with its tokens, an API key, a broker credential.
        var issued = await OAuthClient.IssueAsync(server);
        await using var provider = await TestOAuthProvider.StartAsync();
        var caller = await TestBroker.CallerAsync(server);
        var credentialId = await TestBroker.ConnectedCredentialAsync(caller, provider);
        var providerToken = provider.LastIssuedAccessToken;
        var before = await CountsAsync();

        var statuses = new ConcurrentDictionary<string, int>();
        var created = new ConcurrentBag<string>();
        var slowestFailure = TimeSpan.Zero;
        var writes = 0;
        var phase = "before";
        using var stop = new CancellationTokenSource();

        // Readers (API key, introspection, credential reads) and a writer (new API keys).
        async Task WorkAsync(int worker)
        {
            using var client = server.CreateClient();
            client.DefaultRequestHeaders.Add("X-API-Key", caller.ApiKey);
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var clock = Stopwatch.StartNew();
                // Counted under the phase the request started and ended in, or as a transition
                // when the database went away or came back while it ran.
                var started = phase;
                string Label() => phase == started ? started : "transition";
                HttpResponseMessage response;
                try
                {
                    // Writes a third as often as each read, and at most 90 in all: an account may hold 100 keys.
                    var kind = (worker + i) % 4;
                    if (kind == 3 && (i % 3 != 0 || Interlocked.Increment(ref writes) > 90))
                    {
                        kind = 0;
                    }
                    response = kind switch
                    {
                        0 => await client.GetAsync("/external-api/v1/me"),
                        1 => await client.PostAsync("/api/oauth/introspect", new FormUrlEncodedContent(
                            OAuthClient.ClientParameters(issued.App, issued.Tokens.GetProperty("access_token").GetString()!))),
                        2 => await client.PostAsync($"/mcp/credentials/{credentialId}/access-token", null),
                        _ => await caller.Account.Session.PostAsJsonAsync("/api/keys", new { name = $"outage {worker}-{i}", scopes = new[] { "IDENTITY" } }),
                    };
                }
                catch (HttpRequestException)
                {
                    statuses.AddOrUpdate($"{Label()} connection error", 1, (_, n) => n + 1);
                    continue;
                }
                var status = (int)response.StatusCode;
                statuses.AddOrUpdate($"{Label()} {status}", 1, (_, n) => n + 1);
                if (status == 503)
                {
                    Assert.True(response.Headers.RetryAfter is not null, "503 without Retry-After");
                    if (clock.Elapsed > slowestFailure)
                    {
                        slowestFailure = clock.Elapsed;
                    }
                }
                if (status == 201)
                {
                    using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
                    created.Add(body.RootElement.GetProperty("id").GetString()!);
                }
                await Task.Delay(5);
            }
        }

        var workers = Enumerable.Range(0, 6).Select(WorkAsync).ToList();
        await Task.Delay(TimeSpan.FromSeconds(1));
        phase = "outage";
        await server.Database.StopAsync();
        await Task.Delay(TimeSpan.FromSeconds(3));
        await server.Database.StartAgainAsync();
        phase = "recovering";
        // The node recovers by itself: every kind of request succeeds again.
        var recovery = Stopwatch.StartNew();
        using (var probe = server.CreateClient())
        {
            probe.DefaultRequestHeaders.Add("X-API-Key", caller.ApiKey);
            await Eventually.TrueAsync(async () =>
                (await probe.GetAsync("/external-api/v1/me")).IsSuccessStatusCode
                && (await probe.PostAsync($"/mcp/credentials/{credentialId}/access-token", null)).IsSuccessStatusCode
                && (await probe.GetAsync("/readyz")).IsSuccessStatusCode,
                TimeSpan.FromSeconds(30), "recovery after the restart");
        }
        var recovered = recovery.Elapsed;
        phase = "after";
        await Task.Delay(TimeSpan.FromSeconds(1));
        stop.Cancel();
        await Task.WhenAll(workers);

        foreach (var (key, count) in statuses.OrderBy(s => s.Key))
        {
            output.WriteLine($"{key}: {count}");
        }
        output.WriteLine($"slowest 503: {slowestFailure.TotalMilliseconds:F0} ms; recovered {recovered.TotalMilliseconds:F0} ms after the restart");

        // Only successes, and 503s while the database is away: no 500, no dropped connection.
        Assert.All(statuses.Keys, key => Assert.Matches(key.StartsWith("before", StringComparison.Ordinal) || key.StartsWith("after", StringComparison.Ordinal) ? " (200|201)$" : " (200|201|503)$", key));
        Assert.True(statuses.Keys.Any(k => k.StartsWith("outage 503", StringComparison.Ordinal)), "the outage was not noticed");
        Assert.True(statuses.Keys.Any(k => k.StartsWith("after 2", StringComparison.Ordinal)), "no success after the restart");

        // Nothing lost, nothing doubled: every key the clients were told was created exists once,
        // and nothing else was created; what was stored before still works.
        var keys = await server.WithDbAsync(db => db.ApiKeys.AsNoTracking().Select(k => k.Id).ToListAsync());
        Assert.Equal(created.Count, created.Distinct().Count());
        Assert.Equal(before.ApiKeys + created.Count, keys.Count);
        Assert.Superset(created.ToHashSet(), keys.ToHashSet());
        var after = await CountsAsync();
        Assert.Equal(before.Credentials, after.Credentials);
        Assert.Equal(before.Users, after.Users);

        using var check = server.CreateClient();
        var introspection = await OAuthClient.IntrospectAsync(check, issued.App, issued.Tokens.GetProperty("access_token").GetString()!);
        Assert.True(introspection.GetProperty("active").GetBoolean());
        var refreshed = await OAuthClient.TokenAsync(check, OAuthClient.RefreshParameters(issued.App, issued.Tokens.GetProperty("refresh_token").GetString()!));
        Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
        var token = await TestBroker.PostAsync(caller, $"/mcp/credentials/{credentialId}/access-token", new { });
        Assert.Equal(providerToken, token.GetProperty("access_token").GetString());
    }

    [Fact]
    public async Task After_a_restart_while_the_node_was_idle_at_most_one_request_fails()
    {
        var account = await TestAccounts.SignUpAsync(server);
        // Concurrent requests leave several connections open in the node's pool.
        await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => TestAccounts.CreateKeyAsync(account, "IDENTITY")));

        // The database restarts with no request under way: every pooled connection is now dead,
        // and nothing has told the node.
        await server.Database.StopAsync();
        await server.Database.StartAgainAsync();

        var answers = new List<int>();
        for (var i = 0; i < 12; i++)
        {
            var response = await account.Session.PostAsJsonAsync("/api/keys", new { name = $"after {i}", scopes = new[] { "IDENTITY" } });
            answers.Add((int)response.StatusCode);
        }
        output.WriteLine($"answers after the restart: {string.Join(' ', answers)}");
        Assert.True(answers.Count(a => a != 201) <= 1, $"answers after the restart: {string.Join(' ', answers)}");
        Assert.Equal(201, answers[^1]);
    }

    private Task<(int ApiKeys, int Credentials, int Users)> CountsAsync() => server.WithDbAsync(async db =>
        (await db.ApiKeys.CountAsync(), await db.BrokerCredentials.CountAsync(), await db.Users.CountAsync()));
}

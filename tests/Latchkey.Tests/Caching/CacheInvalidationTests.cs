using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static Latchkey.Tests.Infrastructure.OAuthClient;

namespace Latchkey.Tests.Caching;

/// <summary>
/// The hot paths answer from memory after the first request. Every test here warms a cache by
/// using a credential, changes its state, and checks that the very next request sees the change.
/// </summary>
public abstract class CacheInvalidationTests(LatchkeyServerFixture server)
{
    private static async Task<HttpStatusCode> MeWithKeyAsync(LatchkeyServerFixture server, string key) =>
        (await TestAccounts.CallMeWithKeyAsync(server.CreateClient(), key)).StatusCode;

    [Fact]
    public async Task A_revoked_api_key_is_refused_on_the_next_request()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var (key, id) = await TestAccounts.CreateKeyAsync(account, "IDENTITY");
        Assert.Equal(HttpStatusCode.OK, await MeWithKeyAsync(server, key));
        Assert.Equal(HttpStatusCode.OK, await MeWithKeyAsync(server, key));

        Assert.Equal(HttpStatusCode.NoContent, (await account.Session.DeleteAsync($"/api/keys/{id}")).StatusCode);

        Assert.Equal(HttpStatusCode.Unauthorized, await MeWithKeyAsync(server, key));
    }

    [Fact]
    public async Task Stamping_a_keys_last_use_invalidates_no_cache_and_revoking_it_does()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var (key, id) = await TestAccounts.CreateKeyAsync(account, "IDENTITY");
        var revisions = server.Services.GetRequiredService<Latchkey.Cluster.CacheRevisions>();
        var invalidated = new System.Collections.Concurrent.ConcurrentQueue<Latchkey.Cluster.CacheScope>();
        void Heard(Latchkey.Cluster.CacheScope scope) => invalidated.Enqueue(scope);
        revisions.Invalidated += Heard;
        try
        {
            // The first use stamps the key's "last used" time.
            Assert.Equal(HttpStatusCode.OK, await MeWithKeyAsync(server, key));
            Assert.NotNull(await server.WithDbAsync(db => db.ApiKeys.Where(k => k.Id == id).Select(k => k.LastUsedAt).SingleAsync()));
            Assert.DoesNotContain(Latchkey.Cluster.CacheScope.ApiKeys, invalidated);

            Assert.Equal(HttpStatusCode.NoContent, (await account.Session.DeleteAsync($"/api/keys/{id}")).StatusCode);
            Assert.Contains(Latchkey.Cluster.CacheScope.ApiKeys, invalidated);
            Assert.Equal(HttpStatusCode.Unauthorized, await MeWithKeyAsync(server, key));
        }
        finally
        {
            revisions.Invalidated -= Heard;
        }
    }

    [Fact]
    public async Task A_changed_profile_shows_on_the_next_request()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var (key, _) = await TestAccounts.CreateKeyAsync(account, "IDENTITY");
        var client = server.CreateClient();
        client.DefaultRequestHeaders.Add("X-API-Key", key);
        Assert.Equal(account.DisplayName, (await client.GetFromJsonAsync<JsonElement>("/external-api/v1/me")).GetProperty("name").GetString());

        await server.WithDbAsync(async db =>
        {
            var user = await db.Users.SingleAsync(u => u.Email == account.Email);
            user.DisplayName = "Renamed";
            return await db.SaveChangesAsync();
        });

        Assert.Equal("Renamed", (await client.GetFromJsonAsync<JsonElement>("/external-api/v1/me")).GetProperty("name").GetString());
    }

    [Fact]
    public async Task Revoking_a_grant_stops_its_bearer_token_and_its_introspection_at_once()
    {
        var issued = await IssueAsync(server);
        var introspector = server.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(server.CreateClient(), issued.AccessToken)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(server.CreateClient(), issued.AccessToken)).StatusCode);
        Assert.True((await IntrospectAsync(introspector, issued.App, issued.AccessToken)).GetProperty("active").GetBoolean());
        Assert.True((await IntrospectAsync(introspector, issued.App, issued.AccessToken)).GetProperty("active").GetBoolean());

        Assert.Equal(HttpStatusCode.NoContent, (await issued.User.Session.DeleteAsync($"/api/oauth/authorizations/{issued.App.ClientId}")).StatusCode);

        Assert.Equal(HttpStatusCode.Unauthorized, (await CallMeAsync(server.CreateClient(), issued.AccessToken)).StatusCode);
        Assert.False((await IntrospectAsync(introspector, issued.App, issued.AccessToken)).GetProperty("active").GetBoolean());
    }

    [Fact]
    public async Task Disabling_an_app_stops_its_tokens_and_its_introspection_at_once()
    {
        var issued = await IssueAsync(server);
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(server.CreateClient(), issued.AccessToken)).StatusCode);
        Assert.True((await IntrospectAsync(server.CreateClient(), issued.App, issued.AccessToken)).GetProperty("active").GetBoolean());

        Assert.Equal(HttpStatusCode.OK, (await issued.Owner.Session.PostAsync($"/api/oauth/apps/{issued.App.ClientId}/disable", null)).StatusCode);

        Assert.Equal(HttpStatusCode.Unauthorized, (await CallMeAsync(server.CreateClient(), issued.AccessToken)).StatusCode);
        var introspection = await server.CreateClient().PostAsync("/api/oauth/introspect", new FormUrlEncodedContent(ClientParameters(issued.App, issued.AccessToken)));
        Assert.NotEqual(HttpStatusCode.OK, introspection.StatusCode);
        Assert.Contains("invalid_client", await introspection.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task The_cached_client_follows_edits_disabling_and_secret_rotation_at_once()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner);
        Task<HttpResponseMessage> ClientCredentialsAsync(string secret) => TokenAsync(server.CreateClient(), new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = app.ClientId,
            ["client_secret"] = secret,
            ["scope"] = "READ_GRAPH",
        });
        Assert.Equal(HttpStatusCode.OK, (await ClientCredentialsAsync(app.ClientSecret!)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await ClientCredentialsAsync(app.ClientSecret!)).StatusCode);

        // An edit through the owner's API works on the cached copy and is seen by the next request.
        var edited = await owner.Session.PatchAsJsonAsync($"/api/oauth/apps/{app.ClientId}", new { scopes = new[] { "IDENTITY" } });
        Assert.True(edited.StatusCode == HttpStatusCode.OK, await edited.Content.ReadAsStringAsync());
        var narrowed = await ClientCredentialsAsync(app.ClientSecret!);
        Assert.Equal(HttpStatusCode.BadRequest, narrowed.StatusCode);
        Assert.Contains("invalid_scope", await narrowed.Content.ReadAsStringAsync());
        edited = await owner.Session.PatchAsJsonAsync($"/api/oauth/apps/{app.ClientId}", new { scopes = new[] { "IDENTITY", "READ_GRAPH" } });
        Assert.Equal(HttpStatusCode.OK, edited.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await ClientCredentialsAsync(app.ClientSecret!)).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await owner.Session.PostAsync($"/api/oauth/apps/{app.ClientId}/disable", null)).StatusCode);
        var refused = await ClientCredentialsAsync(app.ClientSecret!);
        Assert.Contains("invalid_client", await refused.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await owner.Session.PostAsync($"/api/oauth/apps/{app.ClientId}/enable", null)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await ClientCredentialsAsync(app.ClientSecret!)).StatusCode);

        var rotated = await owner.Session.PostAsync($"/api/oauth/apps/{app.ClientId}/rotate-secret", null);
        Assert.Equal(HttpStatusCode.OK, rotated.StatusCode);
        var newSecret = (await rotated.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("client_secret").GetString()!;
        Assert.Contains("invalid_client", await (await ClientCredentialsAsync(app.ClientSecret!)).Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await ClientCredentialsAsync(newSecret)).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await owner.Session.DeleteAsync($"/api/oauth/apps/{app.ClientId}")).StatusCode);
        Assert.Contains("invalid_client", await (await ClientCredentialsAsync(newSecret)).Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_cached_introspection_answer_needs_the_same_client_secret_and_a_rotated_secret_ends_it()
    {
        var issued = await IssueAsync(server);
        var basic = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Uri.EscapeDataString(issued.App.ClientId)}:{Uri.EscapeDataString(issued.App.ClientSecret!)}"));
        Task<HttpResponseMessage> IntrospectBasicAsync(string authorization) => server.CreateClient().SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/oauth/introspect")
        {
            Headers = { { "Authorization", authorization } },
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = issued.AccessToken, ["token_type_hint"] = "access_token" }),
        });
        var first = await IntrospectBasicAsync("Basic " + basic);
        var second = await IntrospectBasicAsync("Basic " + basic);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        using (var a = JsonDocument.Parse(await first.Content.ReadAsStringAsync()))
        using (var b = JsonDocument.Parse(await second.Content.ReadAsStringAsync()))
        {
            Assert.True(b.RootElement.GetProperty("active").GetBoolean());
            Assert.Equal(a.RootElement.GetProperty("jti").GetString(), b.RootElement.GetProperty("jti").GetString());
            Assert.Equal(a.RootElement.GetProperty("exp").GetInt64(), b.RootElement.GetProperty("exp").GetInt64());
        }

        var wrongSecret = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Uri.EscapeDataString(issued.App.ClientId)}:wrong-secret"));
        Assert.NotEqual(HttpStatusCode.OK, (await IntrospectBasicAsync("Basic " + wrongSecret)).StatusCode);

        var rotated = await issued.Owner.Session.PostAsync($"/api/oauth/apps/{issued.App.ClientId}/rotate-secret", null);
        Assert.Equal(HttpStatusCode.OK, rotated.StatusCode);
        Assert.NotEqual(HttpStatusCode.OK, (await IntrospectBasicAsync("Basic " + basic)).StatusCode);
    }
}

public sealed class CacheInvalidationTestsOnSqlite(SqliteServer server) : CacheInvalidationTests(server), IClassFixture<SqliteServer>;

public sealed class CacheInvalidationTestsOnPostgres(PostgresServer server) : CacheInvalidationTests(server), IClassFixture<PostgresServer>;

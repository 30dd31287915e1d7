using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Tests.ApiKeys;

public abstract class ApiKeyTests(LatchkeyServerFixture server)
{
    [Fact]
    public async Task Create_shows_the_key_once_and_stores_only_its_hash()
    {
        var account = await TestAccounts.SignUpAsync(server);

        var response = await account.Session.PostAsJsonAsync("/api/keys", new { name = "deploy bot", scopes = new[] { "READ_GRAPH", "IDENTITY" } });

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        using var created = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var root = created.RootElement;
        var key = root.GetProperty("key").GetString()!;
        var id = root.GetProperty("id").GetString()!;
        Assert.StartsWith("lk_ak_", key);
        Assert.Equal(key[..12], root.GetProperty("prefix").GetString());
        Assert.Equal(["IDENTITY", "READ_GRAPH"], root.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));
        Assert.Equal($"/api/keys/{id}", response.Headers.Location?.OriginalString);

        var listed = await account.Session.GetStringAsync("/api/keys");
        var single = await account.Session.GetStringAsync($"/api/keys/{id}");
        Assert.DoesNotContain(key, listed);
        Assert.DoesNotContain(key, single);
        Assert.DoesNotContain("\"key\"", single);

        var stored = await server.WithDbAsync(db => db.ApiKeys.AsNoTracking().SingleAsync(k => k.Id == id));
        Assert.Equal(SHA256.HashData(Encoding.UTF8.GetBytes(key)), stored.SecretHash);
        Assert.Equal(key[..12], stored.DisplayPrefix);
        Assert.DoesNotContain(key[12..], stored.Name + stored.DisplayPrefix + stored.Scopes);
    }

    [Fact]
    public async Task List_shows_name_prefix_scopes_created_last_used_and_expiry()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var expiresAt = DateTimeOffset.UtcNow.AddDays(30);
        var response = await account.Session.PostAsJsonAsync("/api/keys", new { name = "nightly", scopes = new[] { "IDENTITY" }, expires_at = expiresAt });
        using var created = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var key = created.RootElement.GetProperty("key").GetString()!;

        using var unused = JsonDocument.Parse(await account.Session.GetStringAsync("/api/keys"));
        Assert.Equal(JsonValueKind.Null, unused.RootElement.GetProperty("keys")[0].GetProperty("last_used_at").ValueKind);

        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(key)).StatusCode);

        using var list = JsonDocument.Parse(await account.Session.GetStringAsync("/api/keys"));
        var item = Assert.Single(list.RootElement.GetProperty("keys").EnumerateArray());
        Assert.Equal("nightly", item.GetProperty("name").GetString());
        Assert.Equal(key[..12], item.GetProperty("prefix").GetString());
        Assert.Equal("IDENTITY", item.GetProperty("scopes")[0].GetString());
        Assert.True(item.GetProperty("created_at").GetDateTimeOffset() <= DateTimeOffset.UtcNow);
        Assert.Equal(JsonValueKind.String, item.GetProperty("last_used_at").ValueKind);
        Assert.Equal(expiresAt.ToUnixTimeSeconds(), item.GetProperty("expires_at").GetDateTimeOffset().ToUnixTimeSeconds());
    }

    [Fact]
    public async Task Revoking_a_key_stops_it_at_once_and_removes_it_from_the_list()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var (key, id) = await TestAccounts.CreateKeyAsync(account, "IDENTITY");
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(key)).StatusCode);

        var revoke = await account.Session.DeleteAsync($"/api/keys/{id}");

        Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        var refused = await CallMeAsync(key);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Contains("revoked", await refused.Content.ReadAsStringAsync());
        Assert.DoesNotContain(id, await account.Session.GetStringAsync("/api/keys"));
        Assert.Equal(HttpStatusCode.NotFound, (await account.Session.DeleteAsync($"/api/keys/{id}")).StatusCode);
    }

    [Fact]
    public async Task An_expired_key_is_refused()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var (key, id) = await TestAccounts.CreateKeyAsync(account, "IDENTITY");
        var past = DateTimeOffset.UtcNow.AddMinutes(-1);
        await server.WithDbAsync(db => db.ApiKeys.Where(k => k.Id == id).ExecuteUpdateAsync(s => s.SetProperty(k => k.ExpiresAt, past)));

        var response = await CallMeAsync(key);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("expired", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Users_cannot_see_or_revoke_each_others_keys()
    {
        var alice = await TestAccounts.SignUpAsync(server);
        var bob = await TestAccounts.SignUpAsync(server);
        var (aliceKey, aliceKeyId) = await TestAccounts.CreateKeyAsync(alice, "IDENTITY");

        Assert.Equal(HttpStatusCode.NotFound, (await bob.Session.GetAsync($"/api/keys/{aliceKeyId}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await bob.Session.DeleteAsync($"/api/keys/{aliceKeyId}")).StatusCode);
        Assert.DoesNotContain(aliceKeyId, await bob.Session.GetStringAsync("/api/keys"));
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(aliceKey)).StatusCode);
    }

    [Fact]
    public async Task The_key_api_needs_a_signed_in_session()
    {
        var anonymous = server.CreateClient();

        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/keys")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized,
            (await anonymous.PostAsJsonAsync("/api/keys", new { name = "x", scopes = new[] { "IDENTITY" } })).StatusCode);
    }

    private Task<HttpResponseMessage> CallMeAsync(string key) => TestAccounts.CallMeWithKeyAsync(server.CreateClient(), key);
}

public sealed class ApiKeyTestsOnSqlite(SqliteServer server) : ApiKeyTests(server), IClassFixture<SqliteServer>;

public sealed class ApiKeyTestsOnPostgres(PostgresServer server) : ApiKeyTests(server), IClassFixture<PostgresServer>;

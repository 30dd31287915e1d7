using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Tests.Accounts;

/// <summary>
/// The JSON API behind the signed-in user's pages takes changes from Latchkey's own origin only:
/// the session cookie a browser attaches to another site's request is not consent to the change.
/// </summary>
public abstract class BrowserSessionTests(LatchkeyServerFixture server)
{
    [Theory]
    [InlineData("Origin", "https://evil.example")]
    [InlineData("Origin", "null")]
    [InlineData("Sec-Fetch-Site", "cross-site")]
    [InlineData("Sec-Fetch-Site", "same-site")]
    public async Task A_key_is_not_created_from_another_origin(string header, string value)
    {
        var account = await TestAccounts.SignUpAsync(server);
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/keys") { Content = JsonContent.Create(new { name = "forged", scopes = new[] { "IDENTITY" } }) };
        request.Headers.Add(header, value);

        var response = await account.Session.SendAsync(request);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("Cross-origin request refused", problem.RootElement.GetProperty("title").GetString());
        Assert.Contains(value, problem.RootElement.GetProperty("detail").GetString());
        Assert.Equal(0, await KeyCountAsync("forged"));
    }

    [Fact]
    public async Task Every_change_to_keys_and_apps_is_checked_and_reading_is_not()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var (_, keyId) = await TestAccounts.CreateKeyAsync(account, "IDENTITY");
        var created = await account.Session.PostAsJsonAsync("/api/oauth/apps", new { name = "Origin test app", redirect_uris = new[] { "https://app.example.com/callback" }, scopes = new[] { "IDENTITY" } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        using var app = JsonDocument.Parse(await created.Content.ReadAsStringAsync());
        var clientId = app.RootElement.GetProperty("app").GetProperty("client_id").GetString()!;

        foreach (var (method, path) in new[]
        {
            (HttpMethod.Delete, $"/api/keys/{keyId}"),
            (HttpMethod.Post, $"/api/oauth/apps/{clientId}/rotate-secret"),
            (HttpMethod.Post, $"/api/oauth/apps/{clientId}/disable"),
            (HttpMethod.Patch, $"/api/oauth/apps/{clientId}"),
            (HttpMethod.Delete, $"/api/oauth/apps/{clientId}"),
            (HttpMethod.Delete, $"/api/oauth/authorizations/{clientId}"),
        })
        {
            var forged = new HttpRequestMessage(method, path) { Content = JsonContent.Create(new { name = "Renamed" }) };
            forged.Headers.Add("Origin", "https://evil.example");
            Assert.Equal(HttpStatusCode.Forbidden, (await account.Session.SendAsync(forged)).StatusCode);
        }

        var read = new HttpRequestMessage(HttpMethod.Get, "/api/keys");
        read.Headers.Add("Origin", "https://evil.example");
        Assert.Equal(HttpStatusCode.OK, (await account.Session.SendAsync(read)).StatusCode);
        // Nothing was changed: the key still works, the app is still there, enabled and named as before.
        Assert.Contains(keyId, await account.Session.GetStringAsync("/api/keys"));
        var stored = await account.Session.GetStringAsync("/api/oauth/apps");
        Assert.Contains("Origin test app", stored);
        Assert.DoesNotContain("Renamed", stored);
    }

    [Fact]
    public async Task Changes_from_the_own_origin_and_from_callers_that_are_not_browsers_are_accepted()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var own = server.BaseAddress.GetLeftPart(UriPartial.Authority);

        foreach (var headers in new[]
        {
            new Dictionary<string, string> { ["Origin"] = own, ["Sec-Fetch-Site"] = "same-origin" },
            new Dictionary<string, string> { ["Origin"] = own },
            new Dictionary<string, string> { ["Sec-Fetch-Site"] = "none" },
            new Dictionary<string, string>(),
        })
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/api/keys") { Content = JsonContent.Create(new { name = "own origin", scopes = new[] { "IDENTITY" } }) };
            foreach (var (name, value) in headers)
            {
                request.Headers.Add(name, value);
            }
            Assert.Equal(HttpStatusCode.Created, (await account.Session.SendAsync(request)).StatusCode);
        }
    }

    [Fact]
    public async Task An_unauthenticated_cross_origin_change_is_unauthorized_first()
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/keys") { Content = JsonContent.Create(new { name = "x", scopes = new[] { "IDENTITY" } }) };
        request.Headers.Add("Origin", "https://evil.example");

        Assert.Equal(HttpStatusCode.Unauthorized, (await server.CreateClient().SendAsync(request)).StatusCode);
    }

    [Fact]
    public async Task A_long_origin_is_quoted_by_its_prefix_only()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var origin = "https://" + new string('a', 5000) + ".example";
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/keys") { Content = JsonContent.Create(new { name = "x", scopes = new[] { "IDENTITY" } }) };
        request.Headers.Add("Origin", origin);

        var response = await account.Session.SendAsync(request);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.True((await response.Content.ReadAsStringAsync()).Length < 1000);
    }

    private Task<int> KeyCountAsync(string name) => server.WithDbAsync(db => db.ApiKeys.CountAsync(k => k.Name == name));
}

public sealed class BrowserSessionTestsOnSqlite(SqliteServer server) : BrowserSessionTests(server), IClassFixture<SqliteServer>;

public sealed class BrowserSessionTestsOnPostgres(PostgresServer server) : BrowserSessionTests(server), IClassFixture<PostgresServer>;

using System.Net;
using System.Text.RegularExpressions;
using Latchkey.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using static Latchkey.Tests.Infrastructure.TestBroker;

namespace Latchkey.Tests.Broker;

/// <summary>
/// Connect sessions on both databases, with a cookie-keeping HTTP client as the end user's browser
/// (the Chromium walk-through is in the page tests).
/// </summary>
public abstract partial class ConnectSessionTests(LatchkeyServerFixture server) : IAsyncLifetime
{
    private const string AppRedirect = "https://app.example.com/done";
    private TestOAuthProvider _provider = null!;

    public async Task InitializeAsync() => _provider = await TestOAuthProvider.StartAsync();

    public async Task DisposeAsync() => await _provider.DisposeAsync();

    private HttpClient Browser() => new(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer(), UseCookies = true }) { BaseAddress = server.BaseAddress };

    private static async Task<string> AntiforgeryAsync(HttpClient browser, string path = "/connect")
    {
        var page = await browser.GetStringAsync(path);
        return RequestVerificationToken().Match(page).Groups[1].Value;
    }

    /// <summary>Opens a connect link as a person does: the page, then Continue (which spends it).</summary>
    private static async Task<HttpResponseMessage> OpenLinkAsync(HttpClient browser, string connectUrl)
    {
        var antiforgery = await AntiforgeryAsync(browser, connectUrl);
        var token = QueryHelpers.ParseQuery(new Uri(connectUrl).Query)["token"].ToString();
        return await browser.PostAsync("/connect/Open", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["token"] = token, ["__RequestVerificationToken"] = antiforgery,
        }));
    }

    private static async Task<Dictionary<string, Microsoft.Extensions.Primitives.StringValues>> BackAtTheAppAsync(HttpResponseMessage response)
    {
        Assert.True(response.StatusCode == HttpStatusCode.Redirect, $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        Assert.StartsWith(AppRedirect, response.Headers.Location!.AbsoluteUri);
        return QueryHelpers.ParseQuery(response.Headers.Location.Query);
    }

    [Fact]
    public async Task A_session_is_spent_on_opening_and_completes_by_oauth_or_by_a_typed_in_key()
    {
        var app = await CallerAsync(server);
        var oauthProvider = await AddProviderAsync(app, _provider);
        _provider.ApiAccepts = headers => headers["X-API-Key"].ToString() == "typed-ok";
        var typedProvider = (await SendAsync(app, HttpMethod.Post, "/mcp/providers", new { provider = "custom", custom = _provider.TypedDefinition("api_key") }, HttpStatusCode.Created))
            .GetProperty("id").GetString()!;

        // By OAuth: open the link, start, visit the provider, come back.
        var session = await SendAsync(app, HttpMethod.Post, "/mcp/connect-sessions",
            new { end_user_id = "eu-oauth", provider_ids = new[] { oauthProvider, typedProvider }, redirect_uri = AppRedirect }, HttpStatusCode.Created);
        using var browser = Browser();
        // Fetching the link (as a link preview or a mail scanner does) does not spend it.
        Assert.Equal(HttpStatusCode.OK, (await Browser().GetAsync(session.GetProperty("connect_url").GetString())).StatusCode);
        Assert.Equal("pending", (await SendAsync(app, HttpMethod.Get, $"/mcp/connect-sessions/{session.GetProperty("id").GetString()}", null, HttpStatusCode.OK))
            .GetProperty("status").GetString());
        var opened = await OpenLinkAsync(browser, session.GetProperty("connect_url").GetString()!);
        Assert.Equal(HttpStatusCode.Redirect, opened.StatusCode);
        Assert.Equal("/connect", opened.Headers.Location!.OriginalString);
        Assert.Equal("opened", (await SendAsync(app, HttpMethod.Get, $"/mcp/connect-sessions/{session.GetProperty("id").GetString()}", null, HttpStatusCode.OK))
            .GetProperty("status").GetString());
        var token = await AntiforgeryAsync(browser);
        var start = await browser.PostAsync("/connect/Start", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["providerId"] = oauthProvider, ["__RequestVerificationToken"] = token,
        }));
        Assert.Equal(HttpStatusCode.Redirect, start.StatusCode);
        using var providerVisit = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false });
        var back = (await providerVisit.GetAsync(start.Headers.Location)).Headers.Location!;
        Assert.Equal("/connect/callback", back.AbsolutePath);
        var query = await BackAtTheAppAsync(await browser.GetAsync(back.PathAndQuery));
        Assert.Equal("completed", query["status"]);
        var credentialId = query["credential_id"].ToString();
        Assert.Equal("eu-oauth", await server.WithDbAsync(db => db.BrokerCredentials.Where(c => c.Id == credentialId).Select(c => c.EndUserId).SingleAsync()));

        // Spent: the link again, and the finished session's cookie, lead nowhere.
        Assert.Equal(HttpStatusCode.BadRequest, (await Browser().GetAsync(session.GetProperty("connect_url").GetString())).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await browser.GetAsync("/connect")).StatusCode);

        // By a typed-in key, in a new session: a refused key keeps the session open for another try.
        var second = await SendAsync(app, HttpMethod.Post, "/mcp/connect-sessions",
            new { end_user_id = "eu-typed", provider_ids = new[] { typedProvider }, redirect_uri = AppRedirect }, HttpStatusCode.Created);
        using var other = Browser();
        await OpenLinkAsync(other, second.GetProperty("connect_url").GetString()!);
        FormUrlEncodedContent Form(string key, string antiforgery) => new(new Dictionary<string, string>
        {
            ["providerId"] = typedProvider, ["fields[api_key]"] = key, ["__RequestVerificationToken"] = antiforgery,
        });
        var refused = await other.PostAsync("/connect/Credential", Form("typed-wrong", await AntiforgeryAsync(other)));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("refused the credential", await refused.Content.ReadAsStringAsync());
        var typed = await BackAtTheAppAsync(await other.PostAsync("/connect/Credential", Form("typed-ok", await AntiforgeryAsync(other))));
        Assert.Equal(second.GetProperty("id").GetString(), typed["connect_session_id"]);
        Assert.Equal("completed", (await SendAsync(app, HttpMethod.Get, $"/mcp/connect-sessions/{second.GetProperty("id").GetString()}", null, HttpStatusCode.OK))
            .GetProperty("status").GetString());

        // A provider outside the session is not offered, whatever the form says.
        var third = await SendAsync(app, HttpMethod.Post, "/mcp/connect-sessions",
            new { end_user_id = "eu-3", provider_ids = new[] { typedProvider } }, HttpStatusCode.Created);
        using var thirdBrowser = Browser();
        await OpenLinkAsync(thirdBrowser, third.GetProperty("connect_url").GetString()!);
        var outside = await thirdBrowser.PostAsync("/connect/Start", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["providerId"] = oauthProvider, ["__RequestVerificationToken"] = await AntiforgeryAsync(thirdBrowser),
        }));
        Assert.Equal(HttpStatusCode.NotFound, outside.StatusCode);
    }

    [Fact]
    public async Task A_code_and_state_from_another_sessions_flow_cannot_complete_this_one()
    {
        var app = await CallerAsync(server);
        var providerId = await AddProviderAsync(app, _provider);
        async Task<(HttpClient Browser, string Id)> OpenAsync(string endUser)
        {
            var created = await SendAsync(app, HttpMethod.Post, "/mcp/connect-sessions",
                new { end_user_id = endUser, provider_ids = new[] { providerId }, redirect_uri = AppRedirect }, HttpStatusCode.Created);
            var browser = Browser();
            await OpenLinkAsync(browser, created.GetProperty("connect_url").GetString()!);
            return (browser, created.GetProperty("id").GetString()!);
        }
        var (attacker, attackerSession) = await OpenAsync("attacker");
        var (victim, victimSession) = await OpenAsync("victim");

        // The attacker authorizes their own account and stops before coming back...
        var start = await attacker.PostAsync("/connect/Start", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["providerId"] = providerId, ["__RequestVerificationToken"] = await AntiforgeryAsync(attacker),
        }));
        using var providerVisit = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false });
        var callback = (await providerVisit.GetAsync(start.Headers.Location)).Headers.Location!;

        // ...and has the victim's browser follow the callback: it is refused, nothing is stored for the victim.
        var refused = await victim.GetAsync(callback.PathAndQuery);
        Assert.Equal(HttpStatusCode.OK, refused.StatusCode);
        Assert.Contains("not started here", await refused.Content.ReadAsStringAsync());
        Assert.Equal("opened", (await SendAsync(app, HttpMethod.Get, $"/mcp/connect-sessions/{victimSession}", null, HttpStatusCode.OK)).GetProperty("status").GetString());
        Assert.Equal(0, await server.WithDbAsync(db => db.BrokerCredentials.CountAsync(c => c.EndUserId == "victim")));

        // The flow still belongs to its own session.
        var own = await BackAtTheAppAsync(await attacker.GetAsync(callback.PathAndQuery));
        Assert.Equal(attackerSession, own["connect_session_id"]);
    }

    [Fact]
    public async Task An_expired_session_cannot_be_opened_and_another_accounts_session_is_not_found()
    {
        var app = await CallerAsync(server);
        var providerId = await AddProviderAsync(app, _provider);
        var session = await SendAsync(app, HttpMethod.Post, "/mcp/connect-sessions", new { end_user_id = "eu", provider_ids = new[] { providerId } }, HttpStatusCode.Created);
        var id = session.GetProperty("id").GetString()!;
        await server.WithDbAsync(db => db.BrokerConnectSessions.Where(s => s.Id == id).ExecuteUpdateAsync(s => s.SetProperty(c => c.ExpiresAt, DateTimeOffset.UtcNow.AddMinutes(-1))));

        var response = await Browser().GetAsync(session.GetProperty("connect_url").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("expired", await response.Content.ReadAsStringAsync());
        Assert.Equal("expired", (await SendAsync(app, HttpMethod.Get, $"/mcp/connect-sessions/{id}", null, HttpStatusCode.OK)).GetProperty("status").GetString());
        await SendAsync(await CallerAsync(server), HttpMethod.Get, $"/mcp/connect-sessions/{id}", null, HttpStatusCode.NotFound);
        // Stored as a hash only.
        var stored = await server.WithDbAsync(db => db.BrokerConnectSessions.AsNoTracking().SingleAsync(s => s.Id == id));
        Assert.Equal(32, stored.TokenHash.Length);
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"")]
    private static partial Regex RequestVerificationToken();
}

public sealed class ConnectSessionTestsOnSqlite(SqliteServer server) : ConnectSessionTests(server), IClassFixture<SqliteServer>;

public sealed class ConnectSessionTestsOnPostgres(PostgresServer server) : ConnectSessionTests(server), IClassFixture<PostgresServer>;

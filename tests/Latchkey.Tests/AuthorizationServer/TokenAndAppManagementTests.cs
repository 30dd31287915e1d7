using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using static Latchkey.Tests.AuthorizationServer.AuthorizationCodeFlowTests;
using static Latchkey.Tests.Infrastructure.OAuthClient;

namespace Latchkey.Tests.AuthorizationServer;

public abstract class TokenAndAppManagementTests(LatchkeyServerFixture server)
{
    [Fact]
    public async Task Introspection_answers_rfc_7662_and_reference_fields_to_the_owning_client()
    {
        var (app, user, tokens) = await IssueAsync();
        var accessToken = tokens.GetProperty("access_token").GetString()!;

        foreach (var json in new[] { false, true })
        {
            var result = await IntrospectAsync(server.CreateClient(), app, accessToken, json);
            Assert.True(result.GetProperty("active").GetBoolean());
            Assert.Equal(app.ClientId, result.GetProperty("client_id").GetString());
            Assert.Equal("IDENTITY", result.GetProperty("scopes")[0].GetString());
            Assert.Contains("IDENTITY", result.GetProperty("scope").GetString());
            var userId = await server.WithDbAsync(db => db.Users.Where(u => u.Email == user.Email).Select(u => u.Id).SingleAsync());
            Assert.Equal(userId, result.GetProperty("user_id").GetString());
            Assert.Equal(userId, result.GetProperty("sub").GetString());
            Assert.True(result.GetProperty("exp").GetInt64() > DateTimeOffset.UtcNow.ToUnixTimeSeconds());
            Assert.Equal("Bearer", result.GetProperty("token_type").GetString());
        }
    }

    [Fact]
    public async Task Another_client_cannot_introspect_or_revoke_someone_elses_token()
    {
        var (app, _, tokens) = await IssueAsync();
        var other = await RegisterAppAsync(await TestAccounts.SignUpAsync(server));
        var accessToken = tokens.GetProperty("access_token").GetString()!;

        var introspection = await IntrospectAsync(server.CreateClient(), other, accessToken);
        Assert.False(introspection.GetProperty("active").GetBoolean());

        await server.CreateClient().PostAsync("/api/oauth/revoke", new FormUrlEncodedContent(ClientParameters(other, accessToken)));
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(server.CreateClient(), accessToken)).StatusCode);
        Assert.True((await IntrospectAsync(server.CreateClient(), app, accessToken)).GetProperty("active").GetBoolean());
    }

    [Fact]
    public async Task Revoking_an_access_token_stops_it_at_once()
    {
        var (app, _, tokens) = await IssueAsync();
        var accessToken = tokens.GetProperty("access_token").GetString()!;

        var revoke = await server.CreateClient().PostAsync("/api/oauth/revoke", JsonContent.Create(ClientParameters(app, accessToken, "access_token")));

        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await CallMeAsync(server.CreateClient(), accessToken)).StatusCode);
        Assert.False((await IntrospectAsync(server.CreateClient(), app, accessToken)).GetProperty("active").GetBoolean());
    }

    [Fact]
    public async Task Client_credentials_give_a_confidential_app_a_token_for_itself()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner);

        var response = await OAuthClient.ClientCredentialsAsync(server, app, "READ_GRAPH");

        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        using var tokens = JsonDocument.Parse(body);
        var accessToken = tokens.RootElement.GetProperty("access_token").GetString()!;
        Assert.StartsWith("lk_at_", accessToken);
        Assert.False(tokens.RootElement.TryGetProperty("refresh_token", out _));
        var introspection = await IntrospectAsync(server.CreateClient(), app, accessToken);
        Assert.True(introspection.GetProperty("active").GetBoolean());
        Assert.False(introspection.TryGetProperty("user_id", out _));
        // It acts for no user, so /me (which needs IDENTITY and a user) refuses it.
        Assert.Equal(HttpStatusCode.Forbidden, (await CallMeAsync(server.CreateClient(), accessToken)).StatusCode);
    }

    [Fact]
    public async Task A_public_app_cannot_use_client_credentials()
    {
        var app = await RegisterAppAsync(await TestAccounts.SignUpAsync(server), confidential: false);

        var response = await TokenAsync(server.CreateClient(), new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = app.ClientId,
        });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        // OpenIddict answers that a client secret is required, which a public app cannot have.
        Assert.Contains(await ErrorAsync(response), new[] { "unauthorized_client", "invalid_client", "invalid_request" });
    }

    [Fact]
    public async Task Disabling_an_app_stops_its_tokens_and_flows_at_once_and_enabling_restores_them()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner);
        var user = await TestAccounts.SignUpAsync(server);
        var (code, verifier) = await GetCodeAsync(user, app);
        var tokens = await RedeemCodeAsync(server.CreateClient(), app, code, verifier);
        var accessToken = tokens.GetProperty("access_token").GetString()!;
        var refreshToken = tokens.GetProperty("refresh_token").GetString()!;

        Assert.Equal(HttpStatusCode.OK, (await owner.Session.PostAsync($"/api/oauth/apps/{app.ClientId}/disable", null)).StatusCode);

        Assert.Equal(HttpStatusCode.Unauthorized, (await CallMeAsync(server.CreateClient(), accessToken)).StatusCode);
        Assert.Equal("invalid_client", await ErrorAsync(await TokenAsync(server.CreateClient(), RefreshParameters(app, refreshToken))));
        var (_, challenge) = NewPkce();
        var authorize = await AuthorizeAsync(user.Session, AuthorizeUrl(app, "IDENTITY", challenge), decision: null);
        Assert.False(authorize.Query.ContainsKey("code"));

        Assert.Equal(HttpStatusCode.OK, (await owner.Session.PostAsync($"/api/oauth/apps/{app.ClientId}/enable", null)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(server.CreateClient(), accessToken)).StatusCode);
    }

    [Fact]
    public async Task A_user_revoking_an_authorized_app_stops_all_its_tokens()
    {
        var (app, user, tokens) = await IssueAsync();
        var accessToken = tokens.GetProperty("access_token").GetString()!;

        using var listed = JsonDocument.Parse(await user.Session.GetStringAsync("/api/oauth/authorizations"));
        var entry = Assert.Single(listed.RootElement.GetProperty("apps").EnumerateArray());
        Assert.Equal(app.ClientId, entry.GetProperty("client_id").GetString());
        Assert.Equal("Test App", entry.GetProperty("name").GetString());
        Assert.Contains("IDENTITY", entry.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));

        Assert.Equal(HttpStatusCode.NoContent, (await user.Session.DeleteAsync($"/api/oauth/authorizations/{app.ClientId}")).StatusCode);

        Assert.Equal(HttpStatusCode.Unauthorized, (await CallMeAsync(server.CreateClient(), accessToken)).StatusCode);
        Assert.Equal("invalid_grant", await ErrorAsync(await TokenAsync(server.CreateClient(), RefreshParameters(app, tokens.GetProperty("refresh_token").GetString()!))));
        using var after = JsonDocument.Parse(await user.Session.GetStringAsync("/api/oauth/authorizations"));
        Assert.Empty(after.RootElement.GetProperty("apps").EnumerateArray());
    }

    [Fact]
    public async Task Rotating_the_secret_shows_the_new_one_once_and_the_old_one_stops_working()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner);

        var rotate = await owner.Session.PostAsync($"/api/oauth/apps/{app.ClientId}/rotate-secret", null);
        using var body = JsonDocument.Parse(await rotate.Content.ReadAsStringAsync());
        var newSecret = body.RootElement.GetProperty("client_secret").GetString()!;

        Assert.StartsWith("lk_cs_", newSecret);
        Assert.Equal("invalid_client", await ErrorAsync(await ClientCredentialsAsync(app)));
        Assert.Equal(HttpStatusCode.OK, (await ClientCredentialsAsync(app with { ClientSecret = newSecret })).StatusCode);
        var stored = await server.WithDbAsync(db => db.OAuthApplications.Where(a => a.ClientId == app.ClientId).Select(a => a.ClientSecret).SingleAsync());
        Assert.DoesNotContain(newSecret, stored);
        Assert.DoesNotContain(newSecret, await owner.Session.GetStringAsync("/api/oauth/apps"));
    }

    [Fact]
    public async Task Owners_see_and_change_only_their_own_apps()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var stranger = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner, name: "Mine");

        using var mine = JsonDocument.Parse(await owner.Session.GetStringAsync("/api/oauth/apps"));
        Assert.Equal("Mine", Assert.Single(mine.RootElement.GetProperty("apps").EnumerateArray()).GetProperty("name").GetString());
        using var theirs = JsonDocument.Parse(await stranger.Session.GetStringAsync("/api/oauth/apps"));
        Assert.Empty(theirs.RootElement.GetProperty("apps").EnumerateArray());

        Assert.Equal(HttpStatusCode.NotFound, (await stranger.Session.PostAsync($"/api/oauth/apps/{app.ClientId}/disable", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.Session.DeleteAsync($"/api/oauth/apps/{app.ClientId}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.Session.PatchAsJsonAsync($"/api/oauth/apps/{app.ClientId}", new { name = "Stolen" })).StatusCode);

        var renamed = await owner.Session.PatchAsJsonAsync($"/api/oauth/apps/{app.ClientId}", new { name = "Renamed", description = "New words" });
        Assert.Equal(HttpStatusCode.OK, renamed.StatusCode);
        using var info = JsonDocument.Parse(await server.CreateClient().GetStringAsync($"/api/oauth/apps/{app.ClientId}"));
        Assert.Equal("Renamed", info.RootElement.GetProperty("name").GetString());
        Assert.Equal("New words", info.RootElement.GetProperty("description").GetString());
        Assert.Equal("Test User", info.RootElement.GetProperty("owner").GetString());
        Assert.Contains("IDENTITY", info.RootElement.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));
        Assert.False(info.RootElement.TryGetProperty("client_secret", out _));
    }

    [Fact]
    public async Task Deleting_an_app_removes_it_with_its_tokens()
    {
        var (owner, app, _, tokens) = await OAuthClient.IssueAsync(server);

        Assert.Equal(HttpStatusCode.NoContent, (await owner.Session.DeleteAsync($"/api/oauth/apps/{app.ClientId}")).StatusCode);

        Assert.Equal(HttpStatusCode.Unauthorized, (await CallMeAsync(server.CreateClient(), tokens.GetProperty("access_token").GetString()!)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await server.CreateClient().GetAsync($"/api/oauth/apps/{app.ClientId}")).StatusCode);
        Assert.False(await server.WithDbAsync(db => db.OAuthTokens.AnyAsync(t => t.Application!.ClientId == app.ClientId)));
    }

    public static TheoryData<string, object, string> BadApps => new()
    {
        { "no name", new { name = "", redirect_uris = new[] { RedirectUri }, scopes = new[] { "IDENTITY" } }, "name" },
        { "http redirect", new { name = "x", redirect_uris = new[] { "http://app.example.com/cb" }, scopes = new[] { "IDENTITY" } }, "redirect_uris" },
        { "fragment", new { name = "x", redirect_uris = new[] { "https://app.example.com/cb#frag" }, scopes = new[] { "IDENTITY" } }, "redirect_uris" },
        { "relative", new { name = "x", redirect_uris = new[] { "/callback" }, scopes = new[] { "IDENTITY" } }, "redirect_uris" },
        { "no redirect", new { name = "x", redirect_uris = Array.Empty<string>(), scopes = new[] { "IDENTITY" } }, "redirect_uris" },
        { "unknown scope", new { name = "x", redirect_uris = new[] { RedirectUri }, scopes = new[] { "ROOT" } }, "scopes" },
        { "bad homepage", new { name = "x", homepage_url = "javascript:alert(1)", redirect_uris = new[] { RedirectUri }, scopes = new[] { "IDENTITY" } }, "homepage_url" },
    };

    [Theory]
    [MemberData(nameof(BadApps))]
    public async Task Bad_app_registrations_are_refused_with_the_field_named(string what, object body, string field)
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var before = await server.WithDbAsync(db => db.OAuthApplications.CountAsync());

        var response = await owner.Session.PostAsJsonAsync("/api/oauth/apps", body);

        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, what);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.True(problem.RootElement.GetProperty("errors").TryGetProperty(field, out _), what);
        Assert.Equal(before, await server.WithDbAsync(db => db.OAuthApplications.CountAsync()));
    }

    [Fact]
    public async Task Logos_are_checked_served_and_svg_is_sanitised()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner);
        byte[] png = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3, 4];

        var upload = await owner.Session.PutAsync($"/api/oauth/apps/{app.ClientId}/logo", new ByteArrayContent(png) { Headers = { ContentType = new("image/png") } });
        Assert.Equal(HttpStatusCode.OK, upload.StatusCode);
        using var view = JsonDocument.Parse(await upload.Content.ReadAsStringAsync());
        var logoUrl = view.RootElement.GetProperty("logo_url").GetString()!;
        var served = await server.CreateClient().GetAsync(logoUrl);
        Assert.Equal("image/png", served.Content.Headers.ContentType?.MediaType);
        Assert.Equal(png, await served.Content.ReadAsByteArrayAsync());

        var fake = await owner.Session.PutAsync($"/api/oauth/apps/{app.ClientId}/logo", new ByteArrayContent("not a png"u8.ToArray()) { Headers = { ContentType = new("image/png") } });
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, fake.StatusCode);
        var huge = await owner.Session.PutAsync($"/api/oauth/apps/{app.ClientId}/logo", new ByteArrayContent(new byte[300 * 1024]) { Headers = { ContentType = new("image/png") } });
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, huge.StatusCode);

        const string svg = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10" onload="alert(1)"><script>alert(2)</script><circle cx="5" cy="5" r="4" fill="red"/><image href="https://evil.example/x.png"/><foreignObject><div>hi</div></foreignObject></svg>""";
        var svgUpload = await owner.Session.PutAsync($"/api/oauth/apps/{app.ClientId}/logo", new StringContent(svg, Encoding.UTF8, "image/svg+xml"));
        Assert.Equal(HttpStatusCode.OK, svgUpload.StatusCode);
        using var svgView = JsonDocument.Parse(await svgUpload.Content.ReadAsStringAsync());
        var servedSvg = await server.CreateClient().GetAsync(svgView.RootElement.GetProperty("logo_url").GetString());
        var sanitized = await servedSvg.Content.ReadAsStringAsync();
        Assert.Contains("<circle", sanitized);
        Assert.DoesNotContain("script", sanitized);
        Assert.DoesNotContain("onload", sanitized);
        Assert.DoesNotContain("evil.example", sanitized);
        Assert.DoesNotContain("foreignObject", sanitized);
        Assert.Contains("sandbox", servedSvg.Headers.GetValues("Content-Security-Policy").Single());
    }

    [Fact]
    public async Task Cleanup_removes_expired_and_revoked_tokens_but_keeps_live_ones()
    {
        var (app, _, tokens) = await IssueAsync();
        var revoked = await OAuthClient.IssueAsync(server);
        await server.CreateClient().PostAsync("/api/oauth/revoke", new FormUrlEncodedContent(ClientParameters(revoked.App, revoked.AccessToken)));
        var longAgo = DateTime.UtcNow.AddDays(-2);
        await server.WithDbAsync(db => db.OAuthTokens.Where(t => t.Status != "valid")
            .ExecuteUpdateAsync(s => s.SetProperty(t => t.CreationDate, longAgo).SetProperty(t => t.ExpirationDate, longAgo)));
        var before = await server.WithDbAsync(db => db.OAuthTokens.CountAsync());

        var run = await server.RunCliAsync(["cleanup"]);

        Assert.Equal(0, run.ExitCode);
        Assert.Contains("Removed", run.Output);
        Assert.True(await server.WithDbAsync(db => db.OAuthTokens.CountAsync()) < before);
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(server.CreateClient(), tokens.GetProperty("access_token").GetString()!)).StatusCode);
        Assert.True((await IntrospectAsync(server.CreateClient(), app, tokens.GetProperty("access_token").GetString()!)).GetProperty("active").GetBoolean());
    }

    private async Task<(RegisteredApp App, TestAccount User, JsonElement Tokens)> IssueAsync()
    {
        var issued = await OAuthClient.IssueAsync(server);
        return (issued.App, issued.User, issued.Tokens);
    }

    private Task<HttpResponseMessage> ClientCredentialsAsync(RegisteredApp app) =>
        TokenAsync(server.CreateClient(), new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = app.ClientId,
            ["client_secret"] = app.ClientSecret!,
        });
}

public sealed class TokenAndAppManagementTestsOnSqlite(SqliteServer server) : TokenAndAppManagementTests(server), IClassFixture<SqliteServer>;

public sealed class TokenAndAppManagementTestsOnPostgres(PostgresServer server) : TokenAndAppManagementTests(server), IClassFixture<PostgresServer>;

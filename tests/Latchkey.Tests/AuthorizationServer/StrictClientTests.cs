using System.Net;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using static Latchkey.Tests.Infrastructure.OAuthClient;

namespace Latchkey.Tests.AuthorizationServer;

/// <summary>
/// What strict OAuth clients check: each sign-in's tokens are a chain of their own, revocation and
/// reuse end that chain only, every token response names its scopes in both shapes, discovery
/// advertises what works, and refusals carry the RFC's error codes.
/// </summary>
public abstract class StrictClientTests(LatchkeyServerFixture server)
{
    [Fact]
    public async Task A_replayed_code_revokes_its_own_sign_in_and_leaves_the_other_sign_in_of_the_same_user_alone()
    {
        var (app, _, first, second, firstCode, firstVerifier) = await TwoSignInsAsync();
        var client = server.CreateClient();

        var replay = await TokenAsync(client, CodeParameters(app, firstCode, firstVerifier));

        Assert.Equal(HttpStatusCode.BadRequest, replay.StatusCode);
        Assert.Equal("invalid_grant", (await JsonAsync(replay)).GetProperty("error").GetString());
        await AssertActiveAsync(app, first, false);
        await AssertActiveAsync(app, second, true);
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(client, Access(second))).StatusCode);
        var refreshed = await TokenAsync(client, RefreshParameters(app, Refresh(second)));
        Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
    }

    [Fact]
    public async Task A_reused_refresh_token_revokes_its_own_chain_only()
    {
        var (app, user, first, second, _, _) = await TwoSignInsAsync();
        var client = server.CreateClient();
        var rotated = await JsonAsync(await TokenAsync(client, RefreshParameters(app, Refresh(first))));
        // Beyond OpenIddict's leeway for a client that retried a lost answer.
        await server.WithDbAsync(db => db.OAuthTokens.Where(t => t.Status == "redeemed")
            .ExecuteUpdateAsync(s => s.SetProperty(t => t.RedemptionDate, DateTime.UtcNow.AddMinutes(-5))));

        var reuse = await TokenAsync(client, RefreshParameters(app, Refresh(first)));

        Assert.Equal(HttpStatusCode.BadRequest, reuse.StatusCode);
        await AssertActiveAsync(app, rotated, false);
        Assert.Equal(HttpStatusCode.BadRequest, (await TokenAsync(client, RefreshParameters(app, Refresh(rotated)))).StatusCode);
        await AssertActiveAsync(app, second, true);
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(client, RefreshParameters(app, Refresh(second)))).StatusCode);
        // The app is still among the user's authorized apps: one sign-in ended, not the consent.
        Assert.Contains(app.ClientId, await user.Session.GetStringAsync("/api/oauth/authorizations"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Revoking_a_refresh_token_revokes_the_access_tokens_of_its_chain_and_nothing_else(bool json)
    {
        var (app, user) = await AppAndUserAsync();
        var client = server.CreateClient();
        var (firstCode, firstVerifier) = await GetCodeAsync(user, app, "IDENTITY");
        var first = await RedeemCodeAsync(client, app, firstCode, firstVerifier);
        var rotated = await JsonAsync(await TokenAsync(client, RefreshParameters(app, Refresh(first))));
        var (secondCode, secondVerifier) = await GetCodeAsync(user, app, "IDENTITY");
        var second = await RedeemCodeAsync(client, app, secondCode, secondVerifier);

        var revoke = await client.PostAsync("/api/oauth/revoke", json
            ? System.Net.Http.Json.JsonContent.Create(ClientParameters(app, Refresh(rotated), "refresh_token"))
            : new FormUrlEncodedContent(ClientParameters(app, Refresh(rotated), "refresh_token")));

        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        await AssertActiveAsync(app, rotated, false);
        await AssertActiveAsync(app, first, false);
        Assert.Equal(HttpStatusCode.Unauthorized, (await CallMeAsync(client, Access(rotated))).StatusCode);
        await AssertActiveAsync(app, second, true);
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(client, Access(second))).StatusCode);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Client_credentials_answers_name_their_scopes_in_both_shapes(bool json)
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner, ["IDENTITY", "READ_GRAPH", "openid"]);
        var client = server.CreateClient();
        var parameters = new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = app.ClientId,
            ["client_secret"] = app.ClientSecret!,
        };

        var asked = await JsonAsync(await TokenAsync(client, new Dictionary<string, string>(parameters) { ["scope"] = "READ_GRAPH" }, json));
        var defaulted = await JsonAsync(await TokenAsync(client, parameters, json));

        Assert.Equal("READ_GRAPH", asked.GetProperty("scope").GetString());
        Assert.Equal(["READ_GRAPH"], Array(asked, "scopes"));
        // No scope asked for: the app's registered scopes, without the OpenID ones, which describe a user.
        Assert.Equal(["IDENTITY", "READ_GRAPH"], defaulted.GetProperty("scope").GetString()!.Split(' ').Order());
        Assert.Equal(["IDENTITY", "READ_GRAPH"], Array(defaulted, "scopes").Order());
        var introspected = await IntrospectAsync(client, app, defaulted.GetProperty("access_token").GetString()!);
        Assert.Equal(["IDENTITY", "READ_GRAPH"], Array(introspected, "scopes").Order());
    }

    [Theory]
    [InlineData("IDENTITY", new[] { "IDENTITY" })]
    [InlineData("IDENTITY offline_access", new[] { "IDENTITY", "offline_access" })]
    public async Task Code_and_refresh_answers_report_the_same_scopes_in_both_shapes(string scope, string[] reported)
    {
        var (app, user) = await AppAndUserAsync();
        var client = server.CreateClient();
        var (code, verifier) = await GetCodeAsync(user, app, scope);

        var tokens = await RedeemCodeAsync(client, app, code, verifier);
        var refreshed = await JsonAsync(await TokenAsync(client, RefreshParameters(app, Refresh(tokens))));

        foreach (var answer in new[] { tokens, refreshed })
        {
            Assert.Equal(reported.Order(), answer.GetProperty("scope").GetString()!.Split(' ').Order());
            Assert.Equal(reported.Order(), Array(answer, "scopes").Order());
            // A refresh token comes with every user grant, asked for or not.
            Assert.False(string.IsNullOrEmpty(answer.GetProperty("refresh_token").GetString()));
        }
        // Access tokens carry what they let their bearer do; offline_access is not that.
        var introspected = await IntrospectAsync(client, app, Access(tokens));
        Assert.Equal(["IDENTITY"], Array(introspected, "scopes"));
        Assert.Equal("IDENTITY", introspected.GetProperty("scope").GetString());
    }

    [Fact]
    public async Task Discovery_advertises_public_clients_and_no_client_assertions_which_are_refused()
    {
        var client = server.CreateClient();
        var discovery = JsonDocument.Parse(await client.GetStringAsync("/.well-known/openid-configuration")).RootElement;

        Assert.Equal(["client_secret_basic", "client_secret_post", "none"], Array(discovery, "token_endpoint_auth_methods_supported").Order());
        Assert.Equal(["client_secret_basic", "client_secret_post", "none"], Array(discovery, "revocation_endpoint_auth_methods_supported").Order());
        Assert.Equal(["client_secret_basic", "client_secret_post"], Array(discovery, "introspection_endpoint_auth_methods_supported").Order());
        Assert.Equal(["form_post", "fragment", "query"], Array(discovery, "response_modes_supported").Order());

        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner);
        var assertion = await TokenAsync(client, new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = app.ClientId,
            ["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ["client_assertion"] = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln",
        });
        Assert.Equal(HttpStatusCode.Unauthorized, assertion.StatusCode);
        Assert.Equal("invalid_client", (await JsonAsync(assertion)).GetProperty("error").GetString());
    }

    [Fact]
    public async Task A_public_client_signs_in_without_a_secret_as_discovery_says()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner, confidential: false);
        var user = await TestAccounts.SignUpAsync(server);
        var (code, verifier) = await GetCodeAsync(user, app, "IDENTITY");

        var tokens = await JsonAsync(await TokenAsync(server.CreateClient(), new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code",
            ["client_id"] = app.ClientId,
            ["code"] = code,
            ["code_verifier"] = verifier,
            ["redirect_uri"] = app.RedirectUri,
        }));

        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(server.CreateClient(), Access(tokens))).StatusCode);
    }

    [Theory]
    [InlineData("form_post")]
    [InlineData("fragment")]
    [InlineData("query")]
    public async Task The_code_comes_back_the_way_the_client_asks(string responseMode)
    {
        var (app, user) = await AppAndUserAsync();
        var (verifier, challenge) = NewPkce();

        var outcome = await AuthorizeAsync(user.Session, AuthorizeUrl(app, "IDENTITY", challenge, state: "rm-1",
            extra: new Dictionary<string, string?> { ["response_mode"] = responseMode }));

        Dictionary<string, string> answer;
        if (responseMode == "form_post")
        {
            // An auto-submitting form to the redirect URI, carrying the code and state.
            Assert.Equal(HttpStatusCode.OK, outcome.Response.StatusCode);
            var html = await outcome.Response.Content.ReadAsStringAsync();
            Assert.Contains($"action=\"{app.RedirectUri}\"", html);
            answer = HiddenInputs(html);
        }
        else
        {
            Assert.Equal(HttpStatusCode.Redirect, outcome.Response.StatusCode);
            var location = outcome.Response.Headers.Location!;
            var part = responseMode == "fragment" ? location.Fragment.TrimStart('#') : location.Query;
            Assert.Empty(responseMode == "fragment" ? location.Query : location.Fragment);
            answer = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(part).ToDictionary(p => p.Key, p => p.Value.ToString());
        }
        Assert.Equal("rm-1", answer["state"]);
        var tokens = await RedeemCodeAsync(server.CreateClient(), app, answer["code"], verifier);
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(server.CreateClient(), Access(tokens))).StatusCode);
    }

    [Fact]
    public async Task A_scope_the_app_is_not_registered_for_is_invalid_scope_at_both_endpoints()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner, ["IDENTITY"]);
        var user = await TestAccounts.SignUpAsync(server);
        var (_, challenge) = NewPkce();

        var authorize = await AuthorizeAsync(user.Session, AuthorizeUrl(app, "IDENTITY READ_GRAPH", challenge, state: "s-9"));
        var token = await TokenAsync(server.CreateClient(), new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = app.ClientId,
            ["client_secret"] = app.ClientSecret!,
            ["scope"] = "READ_GRAPH",
        });

        Assert.Equal("invalid_scope", authorize.Query["error"]);
        Assert.Equal("s-9", authorize.Query["state"]);
        Assert.Contains("READ_GRAPH", authorize.Query["error_description"]);
        Assert.Equal(HttpStatusCode.BadRequest, token.StatusCode);
        Assert.Equal("invalid_scope", (await JsonAsync(token)).GetProperty("error").GetString());
    }

    [Fact]
    public async Task A_public_client_asking_for_client_credentials_is_unauthorized_client()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner, confidential: false);

        var response = await TokenAsync(server.CreateClient(), new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = app.ClientId,
        });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("unauthorized_client", (await JsonAsync(response)).GetProperty("error").GetString());
    }

    [Fact]
    public async Task A_parameter_sent_twice_is_refused_as_sent_twice_at_the_token_and_authorization_endpoints()
    {
        var (app, user) = await AppAndUserAsync();
        var (_, challenge) = NewPkce();

        var token = await server.CreateClient().PostAsync("/api/oauth/token", new FormUrlEncodedContent(
        [
            new("grant_type", "client_credentials"), new("client_id", app.ClientId), new("client_id", app.ClientId), new("client_secret", app.ClientSecret!),
        ]));
        var authorize = await user.Session.GetAsync(AuthorizeUrl(app, "IDENTITY", challenge) + "&scope=READ_GRAPH");

        Assert.Equal(HttpStatusCode.BadRequest, token.StatusCode);
        var error = await JsonAsync(token);
        Assert.Equal("invalid_request", error.GetProperty("error").GetString());
        Assert.Contains("'client_id'", error.GetProperty("error_description").GetString());
        Assert.Contains("more than once", error.GetProperty("error_description").GetString());
        var refused = Outcome(authorize);
        Assert.Equal("invalid_request", refused.Query["error"]);
        Assert.Contains("'scope'", refused.Query["error_description"]);
        Assert.Contains("more than once", refused.Query["error_description"]);
    }

    /// <summary>One user signs in to one app twice (two devices): two chains. The first code is returned for replays.</summary>
    private async Task<(RegisteredApp App, TestAccount User, JsonElement First, JsonElement Second, string FirstCode, string FirstVerifier)> TwoSignInsAsync()
    {
        var (app, user) = await AppAndUserAsync();
        var client = server.CreateClient();
        var (firstCode, firstVerifier) = await GetCodeAsync(user, app, "IDENTITY");
        var first = await RedeemCodeAsync(client, app, firstCode, firstVerifier);
        // The second time consent is remembered; the sign-in is a new chain all the same.
        var (secondCode, secondVerifier) = await GetCodeAsync(user, app, "IDENTITY");
        var second = await RedeemCodeAsync(client, app, secondCode, secondVerifier);
        return (app, user, first, second, firstCode, firstVerifier);
    }

    private async Task<(RegisteredApp App, TestAccount User)> AppAndUserAsync()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        return (await RegisterAppAsync(owner), await TestAccounts.SignUpAsync(server));
    }

    private async Task AssertActiveAsync(RegisteredApp app, JsonElement tokens, bool active)
    {
        var introspected = await IntrospectAsync(server.CreateClient(), app, Access(tokens));
        Assert.True(active == introspected.GetProperty("active").GetBoolean(), $"The access token should {(active ? "" : "not ")}be active.");
    }

    private static string Access(JsonElement tokens) => tokens.GetProperty("access_token").GetString()!;

    private static string Refresh(JsonElement tokens) => tokens.GetProperty("refresh_token").GetString()!;

    private static string[] Array(JsonElement element, string name) => [.. element.GetProperty(name).EnumerateArray().Select(e => e.GetString()!)];

    private static async Task<JsonElement> JsonAsync(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
}

public sealed class StrictClientTestsOnSqlite(SqliteServer server) : StrictClientTests(server), IClassFixture<SqliteServer>;

public sealed class StrictClientTestsOnPostgres(PostgresServer server) : StrictClientTests(server), IClassFixture<PostgresServer>;

using System.Net;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using static Latchkey.Tests.Infrastructure.OAuthClient;

namespace Latchkey.Tests.AuthorizationServer;

public abstract class AuthorizationCodeFlowTests(LatchkeyServerFixture server)
{
    [Fact]
    public async Task The_code_flow_with_pkce_issues_prefixed_tokens_that_the_external_api_accepts()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner);
        var user = await TestAccounts.SignUpAsync(server);
        var (verifier, challenge) = NewPkce();

        var consent = await user.Session.GetAsync(AuthorizeUrl(app, "IDENTITY READ_GRAPH", challenge, state: "s-123"));
        var page = await consent.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, consent.StatusCode);
        Assert.Contains("Test App", page);
        Assert.Contains("Read your user id, e-mail address and time zone", page);
        Assert.Contains("Read agent run results", page);
        Assert.Contains("app.example.com", page);
        Assert.Contains(user.Email, page);

        var form = HiddenInputs(page);
        form["decision"] = "approve";
        var outcome = Outcome(await user.Session.PostAsync("/auth/authorize", new FormUrlEncodedContent(form)));
        Assert.Equal("https", outcome.Redirect!.Scheme);
        Assert.Equal("app.example.com", outcome.Redirect.Host);
        Assert.Equal("s-123", outcome.Query["state"]);
        Assert.Equal(server.BaseAddress.AbsoluteUri, outcome.Query["iss"]);

        var tokens = await RedeemCodeAsync(server.CreateClient(), app, outcome.Query["code"], verifier);
        var accessToken = tokens.GetProperty("access_token").GetString()!;
        var refreshToken = tokens.GetProperty("refresh_token").GetString()!;
        Assert.Matches("^lk_at_[0-9A-Za-z]{49}$", accessToken);
        Assert.Matches("^lk_rt_[0-9A-Za-z]{49}$", refreshToken);
        Assert.Equal("Bearer", tokens.GetProperty("token_type").GetString());
        Assert.InRange(tokens.GetProperty("expires_in").GetInt32(), 3500, 3600);
        Assert.Equal(["IDENTITY", "READ_GRAPH"], tokens.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()).Order());
        Assert.Contains("IDENTITY", tokens.GetProperty("scope").GetString());
        var accessExpiry = tokens.GetProperty("access_token_expires_at").GetDateTimeOffset();
        Assert.InRange(accessExpiry, DateTimeOffset.UtcNow.AddMinutes(58), DateTimeOffset.UtcNow.AddMinutes(61));
        Assert.InRange(tokens.GetProperty("refresh_token_expires_at").GetDateTimeOffset(), DateTimeOffset.UtcNow.AddDays(29), DateTimeOffset.UtcNow.AddDays(31));

        var me = await CallMeAsync(server.CreateClient(), accessToken);
        Assert.True(me.StatusCode == HttpStatusCode.OK, await me.Content.ReadAsStringAsync());
        using var identity = JsonDocument.Parse(await me.Content.ReadAsStringAsync());
        Assert.Equal(user.Email, identity.RootElement.GetProperty("email").GetString());

        // Stored only as hashes.
        var stored = await server.WithDbAsync(db => db.OAuthTokens.AsNoTracking().Select(t => t.ReferenceId + " " + t.Payload + " " + t.Properties).ToListAsync());
        Assert.DoesNotContain(stored, s => s.Contains(accessToken) || s.Contains(refreshToken));
    }

    [Fact]
    public async Task A_json_token_request_is_answered_in_both_shapes()
    {
        var (app, user) = await AppAndUserAsync();
        var (code, verifier) = await GetCodeAsync(user, app);

        var tokens = await RedeemCodeAsync(server.CreateClient(), app, code, verifier, json: true);

        Assert.True(tokens.TryGetProperty("expires_in", out _));
        Assert.True(tokens.TryGetProperty("access_token_expires_at", out _));
        Assert.Equal("IDENTITY", tokens.GetProperty("scopes")[0].GetString());
    }

    [Fact]
    public async Task Consent_is_remembered_and_asked_again_only_for_new_scopes()
    {
        var (app, user) = await AppAndUserAsync();
        await GetCodeAsync(user, app, "IDENTITY");

        var (_, challenge) = NewPkce();
        var again = Outcome(await user.Session.GetAsync(AuthorizeUrl(app, "IDENTITY", challenge)));
        Assert.True(again.Query.ContainsKey("code"), "A remembered grant should not show the consent page again.");

        var wider = await user.Session.GetAsync(AuthorizeUrl(app, "IDENTITY READ_GRAPH", challenge));
        var page = await wider.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, wider.StatusCode);
        var newScopes = page[page.IndexOf("id=\"new-scopes\"", StringComparison.Ordinal)..];
        newScopes = newScopes[..newScopes.IndexOf("</ul>", StringComparison.Ordinal)];
        Assert.Contains("READ_GRAPH", newScopes);
        Assert.DoesNotContain("(IDENTITY)", newScopes);
        Assert.Contains("You already allowed", page);
    }

    [Fact]
    public async Task Denying_redirects_with_access_denied_and_the_state()
    {
        var (app, user) = await AppAndUserAsync();
        var (_, challenge) = NewPkce();

        var outcome = await AuthorizeAsync(user.Session, AuthorizeUrl(app, "IDENTITY", challenge, state: "keep-me"), decision: "deny");

        Assert.Equal("access_denied", outcome.Query["error"]);
        Assert.Equal("keep-me", outcome.Query["state"]);
        Assert.False(outcome.Query.ContainsKey("code"));
    }

    [Fact]
    public async Task A_signed_out_user_is_sent_to_sign_in_and_back_to_the_same_request()
    {
        var (app, user) = await AppAndUserAsync();
        var browser = server.CreateClient();
        var (_, challenge) = NewPkce();
        var authorize = AuthorizeUrl(app, "IDENTITY", challenge, state: "round-trip");

        var toSignIn = await browser.GetAsync(authorize);
        Assert.Equal(HttpStatusCode.Redirect, toSignIn.StatusCode);
        var signIn = toSignIn.Headers.Location!.OriginalString;
        Assert.StartsWith("/account/sign-in", new Uri(server.BaseAddress, signIn).AbsolutePath);
        var returnUrl = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(new Uri(server.BaseAddress, signIn).Query)["ReturnUrl"].ToString();
        Assert.StartsWith("/auth/authorize?", returnUrl);

        var signedIn = await Browser.SubmitFormAsync(browser, signIn, new Dictionary<string, string>
        {
            ["Input.Email"] = user.Email,
            ["Input.Password"] = user.Password,
            ["ReturnUrl"] = returnUrl,
        });
        Assert.Equal(returnUrl, signedIn.Headers.Location?.OriginalString);

        var outcome = await AuthorizeAsync(browser, returnUrl);
        Assert.Equal("round-trip", outcome.Query["state"]);
        Assert.True(outcome.Query.ContainsKey("code"));
    }

    [Fact]
    public async Task The_consent_form_refuses_a_post_without_the_antiforgery_token()
    {
        var (app, user) = await AppAndUserAsync();
        var (_, challenge) = NewPkce();
        var page = await (await user.Session.GetAsync(AuthorizeUrl(app, "IDENTITY", challenge))).Content.ReadAsStringAsync();
        var form = HiddenInputs(page);
        form.Remove("__RequestVerificationToken");
        form["decision"] = "approve";

        var forged = await user.Session.PostAsync("/auth/authorize", new FormUrlEncodedContent(form));

        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.Null(forged.Headers.Location);
    }

    [Fact]
    public async Task A_code_is_single_use_and_a_second_redemption_revokes_what_the_first_issued()
    {
        var (app, user) = await AppAndUserAsync();
        var (code, verifier) = await GetCodeAsync(user, app);
        var client = server.CreateClient();
        var first = await RedeemCodeAsync(client, app, code, verifier);
        var accessToken = first.GetProperty("access_token").GetString()!;
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(client, accessToken)).StatusCode);

        var second = await TokenAsync(client, CodeParameters(app, code, verifier));

        Assert.Equal(HttpStatusCode.BadRequest, second.StatusCode);
        Assert.Equal("invalid_grant", await ErrorAsync(second));
        Assert.Equal(HttpStatusCode.Unauthorized, (await CallMeAsync(client, accessToken)).StatusCode);
    }

    [Fact]
    public async Task Refresh_rotates_and_a_reused_refresh_token_revokes_the_grants_tokens()
    {
        var (app, user) = await AppAndUserAsync();
        var (code, verifier) = await GetCodeAsync(user, app);
        var client = server.CreateClient();
        var first = await RedeemCodeAsync(client, app, code, verifier);
        var firstRefresh = first.GetProperty("refresh_token").GetString()!;

        var rotated = await TokenAsync(client, RefreshParameters(app, firstRefresh));
        Assert.Equal(HttpStatusCode.OK, rotated.StatusCode);
        using var rotatedBody = JsonDocument.Parse(await rotated.Content.ReadAsStringAsync());
        var secondRefresh = rotatedBody.RootElement.GetProperty("refresh_token").GetString()!;
        var secondAccess = rotatedBody.RootElement.GetProperty("access_token").GetString()!;
        Assert.NotEqual(firstRefresh, secondRefresh);
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(client, secondAccess)).StatusCode);

        // Replaying the first refresh token (outside OpenIddict's short leeway) is theft: the grant's tokens die.
        await server.WithDbAsync(db => db.OAuthTokens.Where(t => t.Type == OpenIddict.Abstractions.OpenIddictConstants.TokenTypeIdentifiers.RefreshToken && t.Status == "redeemed")
            .ExecuteUpdateAsync(s => s.SetProperty(t => t.RedemptionDate, DateTime.UtcNow.AddMinutes(-5))));
        var replay = await TokenAsync(client, RefreshParameters(app, firstRefresh));

        Assert.Equal("invalid_grant", await ErrorAsync(replay));
        Assert.Equal(HttpStatusCode.Unauthorized, (await CallMeAsync(client, secondAccess)).StatusCode);
        Assert.Equal("invalid_grant", await ErrorAsync(await TokenAsync(client, RefreshParameters(app, secondRefresh))));
    }

    [Fact]
    public async Task A_long_chain_of_refreshes_keeps_working()
    {
        var (app, user) = await AppAndUserAsync();
        var (code, verifier) = await GetCodeAsync(user, app);
        var client = server.CreateClient();
        var refresh = (await RedeemCodeAsync(client, app, code, verifier)).GetProperty("refresh_token").GetString()!;

        var basic = server.CreateClient();
        basic.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{Uri.EscapeDataString(app.ClientId)}:{Uri.EscapeDataString(app.ClientSecret!)}")));
        for (var step = 0; step < 300; step++)
        {
            // Alternate the two ways of client authentication.
            var response = step % 2 == 0
                ? await TokenAsync(client, RefreshParameters(app, refresh))
                : await basic.PostAsync("/api/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "refresh_token", ["refresh_token"] = refresh }));
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"step {step}: {body}");
            refresh = JsonDocument.Parse(body).RootElement.GetProperty("refresh_token").GetString()!;
        }
    }

    [Fact]
    public async Task Refresh_cannot_widen_the_scopes()
    {
        var (app, user) = await AppAndUserAsync();
        var (code, verifier) = await GetCodeAsync(user, app, "IDENTITY");
        var tokens = await RedeemCodeAsync(server.CreateClient(), app, code, verifier);

        var response = await TokenAsync(server.CreateClient(), RefreshParameters(app, tokens.GetProperty("refresh_token").GetString()!, scope: "IDENTITY READ_GRAPH"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_scope", await ErrorAsync(response));
    }

    [Fact]
    public async Task A_refresh_token_of_another_client_is_refused()
    {
        var (app, user) = await AppAndUserAsync();
        var other = await RegisterAppAsync(await TestAccounts.SignUpAsync(server));
        var (code, verifier) = await GetCodeAsync(user, app);
        var tokens = await RedeemCodeAsync(server.CreateClient(), app, code, verifier);

        var response = await TokenAsync(server.CreateClient(), RefreshParameters(other, tokens.GetProperty("refresh_token").GetString()!));

        Assert.Equal("invalid_grant", await ErrorAsync(response));
    }

    [Fact]
    public async Task A_code_issued_to_another_client_is_refused()
    {
        var (app, user) = await AppAndUserAsync();
        var other = await RegisterAppAsync(await TestAccounts.SignUpAsync(server));
        var (code, verifier) = await GetCodeAsync(user, app);

        var response = await TokenAsync(server.CreateClient(), CodeParameters(other, code, verifier));

        Assert.Equal("invalid_grant", await ErrorAsync(response));
    }

    [Fact]
    public async Task A_wrong_code_verifier_is_refused()
    {
        var (app, user) = await AppAndUserAsync();
        var (code, _) = await GetCodeAsync(user, app);

        var response = await TokenAsync(server.CreateClient(), CodeParameters(app, code, NewPkce().Verifier));

        Assert.Equal("invalid_grant", await ErrorAsync(response));
    }

    [Fact]
    public async Task An_expired_code_is_refused()
    {
        var (app, user) = await AppAndUserAsync();
        var (code, verifier) = await GetCodeAsync(user, app);
        await server.WithDbAsync(db => db.OAuthTokens.Where(t => t.Type == OpenIddict.Abstractions.OpenIddictConstants.TokenTypeIdentifiers.Private.AuthorizationCode)
            .ExecuteUpdateAsync(s => s.SetProperty(t => t.ExpirationDate, DateTime.UtcNow.AddMinutes(-1))));

        var response = await TokenAsync(server.CreateClient(), CodeParameters(app, code, verifier));

        Assert.Equal("invalid_grant", await ErrorAsync(response));
    }

    [Fact]
    public async Task A_wrong_client_secret_is_refused()
    {
        var (app, user) = await AppAndUserAsync();
        var (code, verifier) = await GetCodeAsync(user, app);
        var parameters = CodeParameters(app, code, verifier);
        parameters["client_secret"] = Latchkey.Features.AuthorizationServer.Stores.OAuthApplicationManager.SecretFormat.Generate();

        var response = await TokenAsync(server.CreateClient(), parameters);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("invalid_client", await ErrorAsync(response));
    }

    [Fact]
    public async Task Duplicate_parameters_are_refused()
    {
        var (app, user) = await AppAndUserAsync();
        var (code, verifier) = await GetCodeAsync(user, app);
        var body = string.Join('&', CodeParameters(app, code, verifier).Select(p => $"{p.Key}={Uri.EscapeDataString(p.Value)}")) + "&code=" + code;

        var response = await server.CreateClient().PostAsync("/api/oauth/token", new StringContent(body, System.Text.Encoding.UTF8, "application/x-www-form-urlencoded"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_request", await ErrorAsync(response));
    }

    public static TheoryData<string, string, string> BadAuthorizeRequests => new()
    {
        { "missing PKCE", "code_challenge", "invalid_request" },
        { "plain PKCE", "plain", "invalid_request" },
        { "unknown scope", "scope", "invalid_scope" },
    };

    [Theory]
    [MemberData(nameof(BadAuthorizeRequests))]
    public async Task Bad_authorize_requests_with_a_trusted_redirect_get_the_error_there(string what, string change, string expected)
    {
        var (app, user) = await AppAndUserAsync();
        var (_, challenge) = NewPkce();
        var url = change switch
        {
            "code_challenge" => AuthorizeUrl(app, "IDENTITY", challenge, extra: new Dictionary<string, string?> { ["code_challenge"] = null, ["code_challenge_method"] = null }),
            "plain" => AuthorizeUrl(app, "IDENTITY", challenge, method: "plain"),
            _ => AuthorizeUrl(app, "IDENTITY NOT_A_SCOPE", challenge),
        };

        var outcome = await AuthorizeAsync(user.Session, url, decision: null);

        Assert.True(outcome.Query.TryGetValue("error", out var error), $"{what}: {outcome.Response.StatusCode}");
        Assert.Equal(expected, error);
        Assert.Equal("xyz", outcome.Query["state"]);
    }

    [Theory]
    [InlineData("unregistered redirect", "https://evil.example/steal")]
    [InlineData("unknown client", null)]
    public async Task Untrusted_authorize_requests_show_an_error_page_and_never_redirect(string what, string? redirectUri)
    {
        var (app, user) = await AppAndUserAsync();
        var (_, challenge) = NewPkce();
        var target = redirectUri is null ? app with { ClientId = "lk_client_doesNotExist000000" } : app;

        var response = await user.Session.GetAsync(AuthorizeUrl(target, "IDENTITY", challenge, redirectUri: redirectUri));

        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, what);
        Assert.Null(response.Headers.Location);
        Assert.Contains("cannot be completed", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_public_native_client_may_use_any_loopback_port()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner, confidential: false, redirectUri: "http://127.0.0.1/callback");
        var user = await TestAccounts.SignUpAsync(server);
        var (verifier, challenge) = NewPkce();
        var portRedirect = "http://127.0.0.1:49152/callback";

        var outcome = await AuthorizeAsync(user.Session, AuthorizeUrl(app, "IDENTITY", challenge, redirectUri: portRedirect));
        Assert.Equal(49152, outcome.Redirect!.Port);

        var parameters = CodeParameters(app with { RedirectUri = portRedirect }, outcome.Query["code"], verifier);
        var response = await TokenAsync(server.CreateClient(), parameters);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    private async Task<(RegisteredApp App, TestAccount User)> AppAndUserAsync()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        return (await RegisterAppAsync(owner), await TestAccounts.SignUpAsync(server));
    }

    internal static async Task<string?> ErrorAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        using var body = JsonDocument.Parse(text);
        return body.RootElement.TryGetProperty("error", out var error) ? error.GetString() : $"(no error: {(int)response.StatusCode} {text})";
    }
}

public sealed class AuthorizationCodeFlowTestsOnSqlite(SqliteServer server) : AuthorizationCodeFlowTests(server), IClassFixture<SqliteServer>;

public sealed class AuthorizationCodeFlowTestsOnPostgres(PostgresServer server) : AuthorizationCodeFlowTests(server), IClassFixture<PostgresServer>;

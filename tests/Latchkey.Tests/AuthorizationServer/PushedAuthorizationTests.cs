using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Duende.IdentityModel;
using Duende.IdentityModel.Client;
using Latchkey.Tests.Infrastructure;
using static Latchkey.Tests.Infrastructure.OAuthClient;

namespace Latchkey.Tests.AuthorizationServer;

/// <summary>
/// Pushed authorization requests (RFC 9126) through Duende.IdentityModel, as a client library uses
/// them: the app pushes its request, then sends the browser with only its client_id and the
/// request_uri; apps may require it. Also the grant types an app is registered for.
/// </summary>
public abstract class PushedAuthorizationTests(LatchkeyServerFixture server)
{
    [Fact]
    public async Task Discovery_names_the_pushed_authorization_endpoint()
    {
        var discovery = await server.CreateClient().GetDiscoveryDocumentAsync(new DiscoveryDocumentRequest
        {
            Address = server.BaseAddress.AbsoluteUri,
            Policy = { RequireHttps = false },
        });

        Assert.False(discovery.IsError, discovery.Error);
        Assert.Equal(new Uri(server.BaseAddress, "/api/oauth/par").AbsoluteUri, discovery.PushedAuthorizationRequestEndpoint);
        Assert.False(discovery.RequirePushedAuthorizationRequests);
    }

    [Fact]
    public async Task A_pushed_request_signs_the_user_in_through_consent_and_its_code_is_redeemed()
    {
        var (app, user) = await AppAndUserAsync();
        var (verifier, challenge) = NewPkce();
        var pushed = await PushAsync(app, challenge, "IDENTITY", "par-1");
        Assert.False(pushed.IsError, pushed.Error);
        Assert.StartsWith("urn:ietf:params:oauth:request_uri:", pushed.RequestUri);
        Assert.InRange(pushed.ExpiresIn ?? 0, 1, 600);

        var consent = await user.Session.GetAsync(PushedUrl(app, pushed.RequestUri!));
        var html = await consent.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, consent.StatusCode);
        // The form carries the request by reference, not its parameters.
        var fields = HiddenInputs(html);
        Assert.Equal(pushed.RequestUri, fields["request_uri"]);
        Assert.False(fields.ContainsKey("code_challenge"));
        var outcome = await AuthorizeAsync(user.Session, PushedUrl(app, pushed.RequestUri!));

        Assert.Equal("par-1", outcome.Query["state"]);
        var tokens = await RedeemCodeAsync(server.CreateClient(), app, outcome.Query["code"], verifier);
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(server.CreateClient(), tokens.GetProperty("access_token").GetString()!)).StatusCode);
        // The request was good for one sign-in.
        var again = await user.Session.GetAsync(PushedUrl(app, pushed.RequestUri!));
        Assert.NotEqual(HttpStatusCode.Redirect, again.StatusCode);
        var againPage = await again.Content.ReadAsStringAsync();
        Assert.True(againPage.Contains("invalid_request_uri", StringComparison.Ordinal), againPage[againPage.IndexOf("<main", StringComparison.Ordinal)..]);
    }

    [Fact]
    public async Task A_signed_out_user_signs_in_on_the_way_and_the_pushed_request_still_holds()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner);
        var user = await TestAccounts.SignUpAsync(server);
        var browser = server.CreateClient();
        var (verifier, challenge) = NewPkce();
        var pushed = await PushAsync(app, challenge, "IDENTITY", "par-2");

        var toSignIn = await browser.GetAsync(PushedUrl(app, pushed.RequestUri!));
        Assert.Equal(HttpStatusCode.Redirect, toSignIn.StatusCode);
        var location = toSignIn.Headers.Location!;
        var signInPath = location.IsAbsoluteUri ? location.PathAndQuery : location.OriginalString;
        var returnUrl = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(new Uri(server.BaseAddress, signInPath).Query)["ReturnUrl"].ToString();
        Assert.Contains("request_uri=", returnUrl);
        Assert.DoesNotContain("code_challenge", returnUrl);
        var signedIn = await Browser.SubmitFormAsync(browser, signInPath, new Dictionary<string, string>
        {
            ["Input.Email"] = user.Email,
            ["Input.Password"] = user.Password,
        });
        Assert.Equal(HttpStatusCode.Redirect, signedIn.StatusCode);
        var outcome = await AuthorizeAsync(browser, signedIn.Headers.Location!.OriginalString);

        Assert.Equal("par-2", outcome.Query["state"]);
        await RedeemCodeAsync(server.CreateClient(), app, outcome.Query["code"], verifier);
    }

    [Fact]
    public async Task An_app_that_requires_pushed_requests_refuses_a_plain_one_and_takes_a_pushed_one()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var created = await owner.Session.PostAsJsonAsync("/api/oauth/apps", new
        {
            name = "Pushy App",
            redirect_uris = new[] { RedirectUri },
            scopes = new[] { "IDENTITY" },
            confidential = true,
            require_pushed_authorization_requests = true,
        });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var body = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement;
        Assert.True(body.GetProperty("app").GetProperty("require_pushed_authorization_requests").GetBoolean());
        var app = new RegisteredApp(body.GetProperty("app").GetProperty("client_id").GetString()!, body.GetProperty("client_secret").GetString(), RedirectUri);
        var user = await TestAccounts.SignUpAsync(server);
        var (verifier, challenge) = NewPkce();

        var plain = await AuthorizeAsync(user.Session, AuthorizeUrl(app, "IDENTITY", challenge, state: "plain"));
        Assert.Equal("invalid_request", plain.Query["error"]);
        Assert.Contains("request_uri", plain.Query["error_description"]);

        var pushed = await PushAsync(app, challenge, "IDENTITY", "pushed");
        var outcome = await AuthorizeAsync(user.Session, PushedUrl(app, pushed.RequestUri!));
        Assert.Equal("pushed", outcome.Query["state"]);
        await RedeemCodeAsync(server.CreateClient(), app, outcome.Query["code"], verifier);
    }

    [Fact]
    public async Task A_pushed_request_for_a_scope_the_app_lacks_is_refused_at_once()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner, ["IDENTITY"]);
        var (_, challenge) = NewPkce();

        var pushed = await PushAsync(app, challenge, "READ_GRAPH", "x");

        Assert.True(pushed.IsError);
        Assert.Equal("invalid_scope", pushed.Error);
    }

    [Fact]
    public async Task A_client_registering_itself_may_require_pushed_requests_and_name_its_grants()
    {
        var client = server.CreateClient();
        var registered = await client.PostAsJsonAsync("/api/oauth/register", new Dictionary<string, object>
        {
            ["client_name"] = "Device Tool",
            ["token_endpoint_auth_method"] = "none",
            ["redirect_uris"] = new[] { "http://127.0.0.1:7000/cb" },
            ["grant_types"] = new[] { "authorization_code", "refresh_token", OidcConstants.GrantTypes.DeviceCode },
            ["require_pushed_authorization_requests"] = true,
        });
        Assert.Equal(HttpStatusCode.Created, registered.StatusCode);
        var metadata = JsonDocument.Parse(await registered.Content.ReadAsStringAsync()).RootElement;
        Assert.True(metadata.GetProperty("require_pushed_authorization_requests").GetBoolean());
        Assert.Contains(OidcConstants.GrantTypes.DeviceCode, metadata.GetProperty("grant_types").EnumerateArray().Select(g => g.GetString()));

        var exchange = await client.PostAsJsonAsync("/api/oauth/register", new Dictionary<string, object>
        {
            ["client_name"] = "Exchanger",
            ["token_endpoint_auth_method"] = "none",
            ["grant_types"] = new[] { OidcConstants.GrantTypes.TokenExchange },
        });
        Assert.Equal(HttpStatusCode.BadRequest, exchange.StatusCode);
        Assert.Equal("invalid_client_metadata", JsonDocument.Parse(await exchange.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());
    }

    [Fact]
    public async Task An_app_lists_its_grant_types_and_a_public_app_cannot_have_client_credentials()
    {
        var owner = await TestAccounts.SignUpAsync(server);

        var device = await owner.Session.PostAsJsonAsync("/api/oauth/apps", new
        {
            name = "CLI tool",
            scopes = new[] { "IDENTITY" },
            confidential = false,
            grant_types = new[] { OidcConstants.GrantTypes.DeviceCode, "refresh_token" },
        });
        var publicWithSecretGrant = await owner.Session.PostAsJsonAsync("/api/oauth/apps", new
        {
            name = "Confused",
            redirect_uris = new[] { RedirectUri },
            scopes = new[] { "IDENTITY" },
            confidential = false,
            grant_types = new[] { "client_credentials" },
        });

        // A device-flow tool needs no redirect URI.
        Assert.True(device.StatusCode == HttpStatusCode.Created, await device.Content.ReadAsStringAsync());
        var app = JsonDocument.Parse(await device.Content.ReadAsStringAsync()).RootElement.GetProperty("app");
        Assert.Equal(new[] { OidcConstants.GrantTypes.DeviceCode, "refresh_token" }.Order(), app.GetProperty("grant_types").EnumerateArray().Select(g => g.GetString()!).Order());
        Assert.Empty(app.GetProperty("redirect_uris").EnumerateArray());
        Assert.Equal(HttpStatusCode.BadRequest, publicWithSecretGrant.StatusCode);
        Assert.Contains("grant_types", await publicWithSecretGrant.Content.ReadAsStringAsync());
    }

    private async Task<(RegisteredApp App, TestAccount User)> AppAndUserAsync()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        return (await RegisterAppAsync(owner), await TestAccounts.SignUpAsync(server));
    }

    private Task<PushedAuthorizationResponse> PushAsync(RegisteredApp app, string challenge, string scope, string state) =>
        server.CreateClient().PushAuthorizationAsync(new PushedAuthorizationRequest
        {
            Address = new Uri(server.BaseAddress, "/api/oauth/par").AbsoluteUri,
            ClientId = app.ClientId,
            ClientSecret = app.ClientSecret,
            ResponseType = OidcConstants.ResponseTypes.Code,
            RedirectUri = app.RedirectUri,
            Scope = scope,
            State = state,
            CodeChallenge = challenge,
            CodeChallengeMethod = OidcConstants.CodeChallengeMethods.Sha256,
        });

    private static string PushedUrl(RegisteredApp app, string requestUri) =>
        new RequestUrl("/auth/authorize").Create(new Parameters { { "client_id", app.ClientId }, { "request_uri", requestUri } });
}

public sealed class PushedAuthorizationTestsOnSqlite(SqliteServer server) : PushedAuthorizationTests(server), IClassFixture<SqliteServer>;

public sealed class PushedAuthorizationTestsOnPostgres(PostgresServer server) : PushedAuthorizationTests(server), IClassFixture<PostgresServer>;

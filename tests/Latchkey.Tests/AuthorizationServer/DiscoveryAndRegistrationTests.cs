using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using static Latchkey.Tests.AuthorizationServer.AuthorizationCodeFlowTests;
using static Latchkey.Tests.Infrastructure.OAuthClient;

namespace Latchkey.Tests.AuthorizationServer;

public abstract class DiscoveryAndRegistrationTests(LatchkeyServerFixture server)
{
    [Theory]
    [InlineData("/.well-known/oauth-authorization-server")]
    [InlineData("/.well-known/openid-configuration")]
    public async Task Discovery_describes_the_endpoints_and_what_they_support(string path)
    {
        using var document = JsonDocument.Parse(await server.CreateClient().GetStringAsync(path));
        var root = document.RootElement;
        var issuer = root.GetProperty("issuer").GetString()!;

        Assert.Equal(server.BaseAddress.AbsoluteUri, issuer);
        Assert.Equal(issuer + "auth/authorize", root.GetProperty("authorization_endpoint").GetString());
        Assert.Equal(issuer + "api/oauth/token", root.GetProperty("token_endpoint").GetString());
        Assert.Equal(issuer + "api/oauth/introspect", root.GetProperty("introspection_endpoint").GetString());
        Assert.Equal(issuer + "api/oauth/revoke", root.GetProperty("revocation_endpoint").GetString());
        Assert.Equal(issuer + "api/oauth/register", root.GetProperty("registration_endpoint").GetString());
        Assert.Equal(["S256"], root.GetProperty("code_challenge_methods_supported").EnumerateArray().Select(m => m.GetString()));
        Assert.Equal(["code"], root.GetProperty("response_types_supported").EnumerateArray().Select(m => m.GetString()));
        Assert.True(root.GetProperty("authorization_response_iss_parameter_supported").GetBoolean());
        Assert.Contains("IDENTITY", root.GetProperty("scopes_supported").EnumerateArray().Select(s => s.GetString()));

        using var jwks = JsonDocument.Parse(await server.CreateClient().GetStringAsync(root.GetProperty("jwks_uri").GetString()));
        var key = Assert.Single(jwks.RootElement.GetProperty("keys").EnumerateArray());
        Assert.Equal("RSA", key.GetProperty("kty").GetString());
        Assert.False(key.TryGetProperty("d", out _), "The JWKS must not publish the private key.");
    }

    [Fact]
    public async Task Signing_keys_are_generated_once_and_kept_in_the_database()
    {
        var keys = await server.WithDbAsync(db => db.ServerKeys.AsNoTracking().ToListAsync());

        Assert.Contains(keys, k => k.Kind == "signing");
        Assert.Contains(keys, k => k.Kind == "encryption");
        Assert.All(keys, k => Assert.DoesNotContain("PRIVATE KEY", k.ProtectedMaterial));
    }

    [Fact]
    public async Task A_public_client_registers_itself_and_completes_the_flow()
    {
        var registration = await server.CreateClient().PostAsJsonAsync("/api/oauth/register", new
        {
            client_name = "Some MCP client",
            redirect_uris = new[] { "http://127.0.0.1/callback" },
            token_endpoint_auth_method = "none",
            grant_types = new[] { "authorization_code", "refresh_token" },
            response_types = new[] { "code" },
            scope = "IDENTITY USE_TOOLS",
            software_id = "ignored-but-accepted",
        });

        Assert.Equal(HttpStatusCode.Created, registration.StatusCode);
        using var body = JsonDocument.Parse(await registration.Content.ReadAsStringAsync());
        var clientId = body.RootElement.GetProperty("client_id").GetString()!;
        Assert.False(body.RootElement.TryGetProperty("client_secret", out _));
        Assert.Equal("none", body.RootElement.GetProperty("token_endpoint_auth_method").GetString());
        Assert.Equal("IDENTITY USE_TOOLS", body.RootElement.GetProperty("scope").GetString());

        var user = await TestAccounts.SignUpAsync(server);
        var app = new RegisteredApp(clientId, null, "http://127.0.0.1:50123/callback");
        var (code, verifier) = await GetCodeAsync(user, app);
        var tokens = await RedeemCodeAsync(server.CreateClient(), app, code, verifier);
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(server.CreateClient(), tokens.GetProperty("access_token").GetString()!)).StatusCode);

        var consent = await user.Session.GetAsync(AuthorizeUrl(app, "USE_TOOLS", NewPkce().Challenge));
        Assert.Contains("registered itself", await consent.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_confidential_registration_needs_an_initial_access_token()
    {
        var before = await server.WithDbAsync(db => db.OAuthApplications.CountAsync());

        var anonymous = await server.CreateClient().PostAsJsonAsync("/api/oauth/register", new
        {
            client_name = "Backend",
            redirect_uris = new[] { "https://backend.example.com/cb" },
            token_endpoint_auth_method = "client_secret_basic",
        });

        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal("invalid_token", await ErrorAsync(anonymous));

        var client = server.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", InitialAccessToken);
        var authorized = await client.PostAsJsonAsync("/api/oauth/register", new
        {
            client_name = "Backend",
            redirect_uris = new[] { "https://backend.example.com/cb" },
            token_endpoint_auth_method = "client_secret_basic",
        });
        Assert.Equal(HttpStatusCode.Created, authorized.StatusCode);
        using var body = JsonDocument.Parse(await authorized.Content.ReadAsStringAsync());
        Assert.StartsWith("lk_cs_", body.RootElement.GetProperty("client_secret").GetString());
        Assert.Equal(before + 1, await server.WithDbAsync(db => db.OAuthApplications.CountAsync()));
    }

    public static TheoryData<string, string, string> BadRegistrations => new()
    {
        { "http redirect", """{"redirect_uris":["http://evil.example/cb"],"token_endpoint_auth_method":"none"}""", "invalid_redirect_uri" },
        { "no redirect", """{"token_endpoint_auth_method":"none"}""", "invalid_redirect_uri" },
        { "implicit grant", """{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none","grant_types":["implicit"]}""", "invalid_client_metadata" },
        { "token response", """{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none","response_types":["token"]}""", "invalid_client_metadata" },
        { "unknown auth", """{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"private_key_jwt"}""", "invalid_client_metadata" },
        { "unknown scope", """{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none","scope":"GOD"}""", "invalid_client_metadata" },
        { "malformed", """{"redirect_uris": [""", "invalid_client_metadata" },
        { "wrong type", """{"redirect_uris":"http://127.0.0.1/cb","token_endpoint_auth_method":"none"}""", "invalid_client_metadata" },
    };

    [Theory]
    [MemberData(nameof(BadRegistrations))]
    public async Task Bad_registrations_get_rfc_7591_errors_and_store_nothing(string what, string body, string expected)
    {
        var before = await server.WithDbAsync(db => db.OAuthApplications.CountAsync());

        var response = await server.CreateClient().PostAsync("/api/oauth/register", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));

        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, what);
        Assert.Equal(expected, await ErrorAsync(response));
        Assert.Equal(before, await server.WithDbAsync(db => db.OAuthApplications.CountAsync()));
    }

    public const string InitialAccessToken = LatchkeyServerFixture.InitialAccessToken;
}

public sealed class DiscoveryAndRegistrationTestsOnSqlite(SqliteServer server) : DiscoveryAndRegistrationTests(server), IClassFixture<SqliteServer>;

public sealed class DiscoveryAndRegistrationTestsOnPostgres(PostgresServer server) : DiscoveryAndRegistrationTests(server), IClassFixture<PostgresServer>;

using System.Text;
using Latchkey.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using static Latchkey.Tests.AuthorizationServer.AuthorizationCodeFlowTests;
using static Latchkey.Tests.Infrastructure.OAuthClient;

namespace Latchkey.Tests.AuthorizationServer;

/// <summary>Malformed requests to the OAuth endpoints get RFC 6749 error codes, never a 500.</summary>
public abstract class TokenEndpointBadInputTests(LatchkeyServerFixture server)
{
    public static TheoryData<string, string, string, string, string> BadRequests => new()
    {
        { "unknown client", "/api/oauth/token", "application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=lk_client_nobody&client_secret=x", "invalid_client" },
        { "missing grant type", "/api/oauth/token", "application/x-www-form-urlencoded", "client_id=x", "invalid_request" },
        { "password grant", "/api/oauth/token", "application/x-www-form-urlencoded", "grant_type=password&username=a&password=b&client_id=x", "unsupported_grant_type" },
        { "implicit-style grant", "/api/oauth/token", "application/json", """{"grant_type":"urn:ietf:params:oauth:grant-type:saml2-bearer","client_id":"x"}""", "unsupported_grant_type" },
        { "malformed JSON", "/api/oauth/token", "application/json", """{"grant_type": """, "invalid_request" },
        { "JSON array", "/api/oauth/token", "application/json", """["grant_type"]""", "invalid_request" },
        { "JSON number value", "/api/oauth/token", "application/json", """{"grant_type":"client_credentials","client_id":7}""", "invalid_request" },
        { "text body", "/api/oauth/token", "text/plain", "grant_type=client_credentials", "invalid_request" },
        { "code without verifier", "/api/oauth/token", "application/x-www-form-urlencoded", "grant_type=authorization_code&code=abc&client_id=x&redirect_uri=https%3A%2F%2Fa.example%2Fcb", "invalid_request" },
        { "malformed refresh token", "/api/oauth/token", "application/x-www-form-urlencoded", "grant_type=refresh_token&refresh_token=lk_rt_short&client_id=x", "invalid_client" },
        { "introspect without token", "/api/oauth/introspect", "application/x-www-form-urlencoded", "client_id=x", "invalid_request" },
        { "revoke malformed JSON", "/api/oauth/revoke", "application/json", "{", "invalid_request" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task Bad_oauth_requests_get_rfc_errors(string what, string path, string contentType, string body, string expected)
    {
        var response = await server.CreateClient().PostAsync(path, new StringContent(body, Encoding.UTF8, contentType));

        Assert.True((int)response.StatusCode is 400 or 401, $"{what}: {(int)response.StatusCode}");
        Assert.Equal(expected, await ErrorAsync(response));
    }

    [Theory]
    [InlineData("/API/OAuth/Token")]
    [InlineData("/api/oauth/token/")]
    public async Task OpenIddict_answers_its_endpoints_whatever_the_case_and_a_trailing_slash(string path)
    {
        var response = await server.CreateClient().PostAsync(path, new StringContent("grant_type=password&username=a&password=b&client_id=x",
            Encoding.UTF8, "application/x-www-form-urlencoded"));

        Assert.Equal("unsupported_grant_type", await ErrorAsync(response));
    }

    [Theory]
    [InlineData("/api/oauth/token", "", true)]
    [InlineData("/Api/OAuth/Introspect/", "", true)]
    [InlineData("/.well-known/openid-configuration", "", true)]
    [InlineData("/auth/authorize", "", true)]
    [InlineData("/oauth/token", "/api", true)]
    [InlineData("/api/oauth/tokens", "", false)]
    [InlineData("/mcp/credentials/x/access-token", "", false)]
    [InlineData("/external-api/v1/me", "", false)]
    public void Only_requests_for_OpenIddicts_endpoint_paths_are_offered_to_it(string path, string pathBase, bool offered)
    {
        var gate = server.Services.GetRequiredService<Latchkey.Features.AuthorizationServer.OpenIddictEndpointGate>();
        var context = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        context.Request.Path = path;
        context.Request.PathBase = pathBase;

        Assert.Equal(offered, gate.MayBeEndpoint(context.Request));
    }

    [Fact]
    public async Task A_malformed_refresh_token_from_a_real_client_is_invalid_grant()
    {
        var issued = await IssueAsync(server);

        var response = await TokenAsync(server.CreateClient(), RefreshParameters(issued.App, issued.RefreshToken[..^1] + (issued.RefreshToken[^1] == 'a' ? 'b' : 'a')));

        Assert.Equal("invalid_grant", await ErrorAsync(response));
    }

    [Fact]
    public async Task The_resource_parameter_becomes_the_access_tokens_audience()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner);
        var user = await TestAccounts.SignUpAsync(server);
        var (verifier, challenge) = NewPkce();
        var resource = "https://tools.example.com/mcp";

        var outcome = await AuthorizeAsync(user.Session, AuthorizeUrl(app, "IDENTITY", challenge, extra: new Dictionary<string, string?> { ["resource"] = resource }));
        var tokens = await RedeemCodeAsync(server.CreateClient(), app, outcome.Query["code"], verifier);

        var introspection = await IntrospectAsync(server.CreateClient(), app, tokens.GetProperty("access_token").GetString()!);
        var audience = introspection.GetProperty("aud");
        Assert.Contains(resource, audience.ValueKind == System.Text.Json.JsonValueKind.Array ? audience.EnumerateArray().Select(a => a.GetString()) : [audience.GetString()]);
    }
}

public sealed class TokenEndpointBadInputTestsOnSqlite(SqliteServer server) : TokenEndpointBadInputTests(server), IClassFixture<SqliteServer>;

public sealed class TokenEndpointBadInputTestsOnPostgres(PostgresServer server) : TokenEndpointBadInputTests(server), IClassFixture<PostgresServer>;

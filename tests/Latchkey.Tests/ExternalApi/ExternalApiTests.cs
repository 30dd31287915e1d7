using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Latchkey.Features.ApiKeys;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Tests.ExternalApi;

public abstract class ExternalApiTests(LatchkeyServerFixture server)
{
    [Fact]
    public async Task Me_with_an_api_key_answers_the_owners_identity()
    {
        var account = await TestAccounts.SignUpAsync(server, timeZone: "Asia/Tokyo");
        var (key, _) = await TestAccounts.CreateKeyAsync(account, "IDENTITY");

        var response = await SendAsync(r => r.Headers.Add("X-API-Key", key));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var me = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var userId = await server.WithDbAsync(db => db.Users.Where(u => u.Email == account.Email).Select(u => u.Id).SingleAsync());
        Assert.Equal(userId, me.RootElement.GetProperty("id").GetString());
        Assert.Equal("Test User", me.RootElement.GetProperty("name").GetString());
        Assert.Equal(account.Email, me.RootElement.GetProperty("email").GetString());
        Assert.Equal("Asia/Tokyo", me.RootElement.GetProperty("timezone").GetString());
        Assert.Equal(4, me.RootElement.EnumerateObject().Count());
    }

    [Fact]
    public async Task Me_accepts_an_api_key_sent_as_a_bearer_token()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var (key, _) = await TestAccounts.CreateKeyAsync(account, "IDENTITY");

        var response = await SendAsync(r => r.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task No_credentials_get_401_with_a_challenge_and_no_error_code()
    {
        var response = await SendAsync(_ => { });

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var challenges = response.Headers.WwwAuthenticate.Select(h => h.ToString()).ToList();
        Assert.Contains("Bearer realm=\"latchkey\"", challenges);
        Assert.DoesNotContain(challenges, c => c.Contains("error="));
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    public static TheoryData<string, string, string> BadCredentials => new()
    {
        { "X-API-Key", ApiKeyService.Format.Prefix + "tooShort", "malformed" },
        { "X-API-Key", "lk_ak_" + new string('A', 49), "malformed" },
        { "X-API-Key", ApiKeyService.Format.Generate(), "not valid" },
        { "Authorization", "Bearer " + ApiKeyService.Format.Generate(), "not valid" },
        { "Authorization", "Bearer lk_at_someAccessTokenThatDoesNotExist", "malformed" },
        { "Authorization", "Bearer " + Latchkey.Features.AuthorizationServer.Tokens.TokenFormats.AccessToken.Generate(), "not valid" },
        { "Authorization", "Bearer some.unknown.jwt", "not valid" },
        { "Authorization", "Basic dXNlcjpwYXNz", "must be 'Bearer <token>'" },
        { "Authorization", "Bearer", "must be 'Bearer <token>'" },
    };

    [Theory]
    [MemberData(nameof(BadCredentials))]
    public async Task Bad_credentials_get_401_invalid_token(string header, string value, string expectedDescription)
    {
        var response = await SendAsync(r => r.Headers.TryAddWithoutValidation(header, value));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var bearer = response.Headers.WwwAuthenticate.Single(h => h.Scheme == "Bearer").ToString();
        Assert.Contains("error=\"invalid_token\"", bearer);
        Assert.Contains(expectedDescription, bearer);
        Assert.Contains(expectedDescription, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Two_credentials_at_once_are_refused()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var (key, _) = await TestAccounts.CreateKeyAsync(account, "IDENTITY");

        var response = await SendAsync(r =>
        {
            r.Headers.Add("X-API-Key", key);
            r.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        });

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("exactly one credential", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_key_without_the_scope_gets_403_insufficient_scope_naming_it()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var (key, _) = await TestAccounts.CreateKeyAsync(account, "READ_GRAPH", "USE_TOOLS");

        var response = await SendAsync(r => r.Headers.Add("X-API-Key", key));

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        var challenge = response.Headers.WwwAuthenticate.Single(h => h.Scheme == "Bearer").ToString();
        Assert.Contains("error=\"insufficient_scope\"", challenge);
        Assert.Contains("scope=\"IDENTITY\"", challenge);
        // A DPoP client is told the same on its scheme; the error goes on the scheme the caller used.
        Assert.DoesNotContain("error=", Assert.Single(response.Headers.WwwAuthenticate, h => h.Scheme == "DPoP").ToString());
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("insufficient_scope", problem.RootElement.GetProperty("error").GetString());
        Assert.Equal("IDENTITY", problem.RootElement.GetProperty("scope").GetString());
    }

    [Fact]
    public async Task A_browser_session_cookie_is_not_a_credential_for_the_external_api()
    {
        var account = await TestAccounts.SignUpAsync(server);

        var response = await account.Session.GetAsync("/external-api/v1/me");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    private Task<HttpResponseMessage> SendAsync(Action<HttpRequestMessage> authenticate)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/external-api/v1/me");
        authenticate(request);
        return server.CreateClient().SendAsync(request);
    }
}

public sealed class ExternalApiTestsOnSqlite(SqliteServer server) : ExternalApiTests(server), IClassFixture<SqliteServer>;

public sealed class ExternalApiTestsOnPostgres(PostgresServer server) : ExternalApiTests(server), IClassFixture<PostgresServer>;

public sealed class MalformedKeyTests
{
    [Fact]
    public async Task A_malformed_key_is_refused_without_touching_the_database()
    {
        // No database at all: a look-up would throw.
        var service = new ApiKeyService(null!, null!, TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger<ApiKeyService>.Instance, null!, null!, null!, null!, null!);
        var wellFormedButTampered = ApiKeyService.Format.Generate();
        wellFormedButTampered = wellFormedButTampered[..10] + (wellFormedButTampered[10] == 'a' ? 'b' : 'a') + wellFormedButTampered[11..];

        var check = await service.AuthenticateAsync(wellFormedButTampered, CancellationToken.None);

        Assert.Equal(ApiKeyCheckFailure.Malformed, check.Failure);
    }
}

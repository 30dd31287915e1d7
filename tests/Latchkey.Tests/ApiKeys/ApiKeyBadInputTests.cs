using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Tests.ApiKeys;

/// <summary>Every bad request is a clear 4xx with problem details, and no key is created.</summary>
public abstract class ApiKeyBadInputTests(LatchkeyServerFixture server)
{
    public static TheoryData<string, string, string, HttpStatusCode, string> BadBodies => new()
    {
        { "malformed JSON", "application/json", "{\"name\": \"x\", \"scopes\": [", HttpStatusCode.BadRequest, "not valid JSON" },
        { "unknown field", "application/json", "{\"name\":\"x\",\"scopes\":[\"IDENTITY\"],\"admin\":true}", HttpStatusCode.BadRequest, "admin" },
        { "wrong type", "application/json", "{\"name\":42,\"scopes\":[\"IDENTITY\"]}", HttpStatusCode.BadRequest, "not valid JSON" },
        { "wrong content type", "text/plain", "name=x", HttpStatusCode.UnsupportedMediaType, "application/json" },
        { "form post", "application/x-www-form-urlencoded", "name=x&scopes=IDENTITY", HttpStatusCode.UnsupportedMediaType, "application/json" },
        { "unknown scope", "application/json", "{\"name\":\"x\",\"scopes\":[\"ROOT\"]}", HttpStatusCode.BadRequest, "Unknown scope 'ROOT'" },
        { "no scopes", "application/json", "{\"name\":\"x\",\"scopes\":[]}", HttpStatusCode.BadRequest, "At least one scope" },
        { "repeated scope", "application/json", "{\"name\":\"x\",\"scopes\":[\"IDENTITY\",\"IDENTITY\"]}", HttpStatusCode.BadRequest, "listed twice" },
        { "missing name", "application/json", "{\"scopes\":[\"IDENTITY\"]}", HttpStatusCode.BadRequest, "name" },
        { "long name", "application/json", "{\"name\":\"" + new string('n', 101) + "\",\"scopes\":[\"IDENTITY\"]}", HttpStatusCode.BadRequest, "1 to 100" },
        { "past expiry", "application/json", "{\"name\":\"x\",\"scopes\":[\"IDENTITY\"],\"expires_at\":\"2000-01-01T00:00:00Z\"}", HttpStatusCode.BadRequest, "in the future" },
        { "bad date", "application/json", "{\"name\":\"x\",\"scopes\":[\"IDENTITY\"],\"expires_at\":\"tomorrow\"}", HttpStatusCode.BadRequest, "not valid JSON" },
        { "null body", "application/json", "null", HttpStatusCode.BadRequest, "" },
    };

    [Theory]
    [MemberData(nameof(BadBodies))]
    public async Task A_bad_create_request_gets_problem_details_and_creates_nothing(
        string what, string contentType, string body, HttpStatusCode expectedStatus, string expectedDetail)
    {
        var account = await TestAccounts.SignUpAsync(server);
        var before = await server.WithDbAsync(db => db.ApiKeys.CountAsync());

        var response = await account.Session.PostAsync("/api/keys", new StringContent(body, Encoding.UTF8, contentType));

        Assert.True(expectedStatus == response.StatusCode, $"{what}: expected {expectedStatus}, got {response.StatusCode}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        using var problem = JsonDocument.Parse(text);
        Assert.Equal((int)expectedStatus, problem.RootElement.GetProperty("status").GetInt32());
        Assert.Contains(expectedDetail, text);
        Assert.Equal(before, await server.WithDbAsync(db => db.ApiKeys.CountAsync()));
    }

    [Fact]
    public async Task An_oversized_body_gets_413()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var before = await server.WithDbAsync(db => db.ApiKeys.CountAsync());
        var huge = "{\"name\":\"" + new string('x', 2 * 1024 * 1024) + "\",\"scopes\":[\"IDENTITY\"]}";

        // Expect: 100-continue, as well-behaved clients send large bodies: the server refuses on
        // the declared length, and the client does not race the closing connection with the body.
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/keys") { Content = new StringContent(huge, Encoding.UTF8, "application/json") };
        request.Headers.ExpectContinue = true;
        var response = await account.Session.SendAsync(request);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(before, await server.WithDbAsync(db => db.ApiKeys.CountAsync()));
    }

    [Theory]
    [InlineData("utf-7")]
    [InlineData("iso-8859-1")]
    [InlineData("\"utf-16\"")]
    public async Task A_json_body_in_another_charset_than_utf8_gets_415(string charset)
    {
        var account = await TestAccounts.SignUpAsync(server);
        var before = await server.WithDbAsync(db => db.ApiKeys.CountAsync());
        var content = new StringContent("{\"name\":\"x\",\"scopes\":[\"IDENTITY\"]}");
        content.Headers.Remove("Content-Type");
        content.Headers.TryAddWithoutValidation("Content-Type", $"application/json; charset={charset}");

        var response = await account.Session.PostAsync("/api/keys", content);

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("UTF-8", await response.Content.ReadAsStringAsync());
        Assert.Equal(before, await server.WithDbAsync(db => db.ApiKeys.CountAsync()));
    }

    [Fact]
    public async Task A_client_that_accepts_only_xml_still_gets_its_error_as_problem_json()
    {
        var account = await TestAccounts.SignUpAsync(server);
        using var bad = new HttpRequestMessage(HttpMethod.Post, "/api/keys") { Content = new StringContent("{", Encoding.UTF8, "application/json") };
        bad.Headers.Accept.ParseAdd("application/xml");
        using var anonymous = new HttpRequestMessage(HttpMethod.Get, "/external-api/v1/security-events/export");
        anonymous.Headers.Accept.ParseAdd("application/xml");

        var badResponse = await account.Session.SendAsync(bad);
        var anonymousResponse = await server.CreateClient().SendAsync(anonymous);

        Assert.Equal(HttpStatusCode.BadRequest, badResponse.StatusCode);
        Assert.Equal("application/problem+json", badResponse.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymousResponse.StatusCode);
        Assert.Equal("application/problem+json", anonymousResponse.Content.Headers.ContentType?.MediaType);
        using var problem = JsonDocument.Parse(await anonymousResponse.Content.ReadAsStringAsync());
        Assert.Equal(401, problem.RootElement.GetProperty("status").GetInt32());
        Assert.True(problem.RootElement.TryGetProperty("trace_id", out _));
    }

    [Fact]
    public async Task Validation_problems_name_the_field_at_fault()
    {
        var account = await TestAccounts.SignUpAsync(server);

        var response = await account.Session.PostAsJsonAsync("/api/keys", new { name = "", scopes = new[] { "NOPE" } });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var errors = problem.RootElement.GetProperty("errors");
        Assert.True(errors.TryGetProperty("name", out _));
        Assert.True(errors.TryGetProperty("scopes", out _));
    }
}

public sealed class ApiKeyBadInputTestsOnSqlite(SqliteServer server) : ApiKeyBadInputTests(server), IClassFixture<SqliteServer>;

public sealed class ApiKeyBadInputTestsOnPostgres(PostgresServer server) : ApiKeyBadInputTests(server), IClassFixture<PostgresServer>;

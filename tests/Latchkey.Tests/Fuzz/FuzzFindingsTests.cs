using System.Net;
using System.Text;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Tests.Fuzz;

/// <summary>What the fuzz campaign found, each pinned down by the smallest request that showed it (each was a 500).</summary>
public abstract class FuzzFindingsTests(LatchkeyServerFixture server)
{
    public static TheoryData<string, string, string> UnreadableForms => new()
    {
        { "/api/oauth/token", "application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=a%00b" },
        { "/api/oauth/introspect", "application/x-www-form-urlencoded", "token=a%00b&client_id=x" },
        { "/api/oauth/revoke", "application/x-www-form-urlencoded", "token=x&client_id=a%00b" },
        { "/api/oauth/introspect", "multipart/form-data; boundary=", "token=x" },
        { "/api/oauth/token", "application/json", """{"grant_type":"client_credentials","client_id":"a\u0000b"}""" },
    };

    [Theory]
    [MemberData(nameof(UnreadableForms))]
    public async Task A_form_that_cannot_be_read_is_invalid_request(string path, string contentType, string body)
    {
        var response = await SendRawAsync("POST", path, contentType, body);

        Assert.Equal(400, response.Status);
        using var error = JsonDocument.Parse(response.Body);
        Assert.Equal("invalid_request", error.RootElement.GetProperty("error").GetString());
    }

    [Theory]
    [InlineData("POST", "/auth/authorize", "application/x-www-form-urlencoded", "response_type=code&client_id=a%00b")]
    [InlineData("POST", "/auth/authorize", "multipart/form-data", "response_type=code")]
    [InlineData("GET", "/auth/authorize?response_type=code&client_id=a%00b", null, "")]
    [InlineData("POST", "/api/oauth/userinfo", "application/x-www-form-urlencoded", "access_token=a%00b")]
    [InlineData("POST", "/api/oauth/userinfo", "multipart/form-data", "access_token=x")]
    [InlineData("GET", "/api/oauth/userinfo?access_token=a%00b", null, "")]
    public async Task Authorization_and_userinfo_requests_that_cannot_be_read_are_refused_with_400(string method, string target, string? contentType, string body)
    {
        var response = await SendRawAsync(method, target, contentType, body);

        Assert.True(response.Status == 400, $"{response.Status} {response.BodyText}");
    }

    [Theory]
    [InlineData("/api/keys", true, """{"name":"a\u0000b","scopes":["IDENTITY"]}""")]
    [InlineData("/mcp/servers", false, """{"name":"a\u0000b","url":"https://tools.example.com/mcp"}""")]
    [InlineData("/mcp/providers", false, """{"provider":"github","client_id":"a\u0000b","client_secret":"s"}""")]
    public async Task Text_with_a_nul_character_is_refused_with_400_and_stores_nothing(string path, bool session, string body)
    {
        var account = await TestAccounts.SignUpAsync(server);
        var (key, _) = await TestAccounts.CreateKeyAsync(account, "IDENTITY");
        var client = session ? account.Session : server.CreateClient();
        if (!session)
        {
            client.DefaultRequestHeaders.Add("X-API-Key", key);
        }
        var before = await server.WithDbAsync(async db => (await db.ApiKeys.CountAsync(), await db.McpServers.CountAsync(), await db.BrokerProviders.CountAsync()));

        var response = await client.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("NUL", await response.Content.ReadAsStringAsync());
        Assert.Equal(before, await server.WithDbAsync(async db => (await db.ApiKeys.CountAsync(), await db.McpServers.CountAsync(), await db.BrokerProviders.CountAsync())));
    }

    [Theory]
    [InlineData("/api/oauth/token")]
    [InlineData("/api/oauth/introspect")]
    [InlineData("/api/oauth/revoke")]
    public async Task A_repeated_content_type_header_is_invalid_request(string path)
    {
        var request = new RawRequest("POST", path,
        [
            new("Host", server.BaseAddress.Authority),
            new("Content-Type", "application/x-www-form-urlencoded"),
            new("Content-Type", "text/plain"),
            new("Content-Length", "7"),
            new("Connection", "close"),
        ], "token=x"u8.ToArray());

        var response = await RawHttpClient.SendAsync(server.BaseAddress, request);

        Assert.Equal(400, response.Status);
        using var error = JsonDocument.Parse(response.Body);
        Assert.Equal("invalid_request", error.RootElement.GetProperty("error").GetString());
    }

    [Fact]
    public async Task A_gateway_path_with_any_text_as_server_id_is_challenged_with_an_escaped_url()
    {
        // "İı" + right-to-left override: the id went into WWW-Authenticate unescaped, which Kestrel refuses to send.
        var response = await SendRawAsync("DELETE", "/mcp/servers/%C4%B0%C4%B1%E2%80%AEevil/mcp", null, "");

        Assert.Equal(401, response.Status);
        Assert.Contains("/mcp/servers/%C4%B0%C4%B1%E2%80%AEevil/mcp", response.Header("WWW-Authenticate"));
    }

    [Fact]
    public async Task A_repeated_content_type_header_on_the_authorize_endpoint_is_refused_with_400()
    {
        var response = await RawHttpClient.SendAsync(server.BaseAddress, new RawRequest("POST", "/auth/authorize",
        [
            new("Host", server.BaseAddress.Authority),
            new("Content-Type", "application/x-www-form-urlencoded"),
            new("Content-Type", "text/plain"),
            new("Content-Length", "18"),
            new("Connection", "close"),
        ], "response_type=code"u8.ToArray()));

        Assert.True(response.Status == 400, $"{response.Status} {response.BodyText}");
    }

    [Theory]
    [InlineData("GET", "/api/oauth/userinfo", null, "")]
    [InlineData("POST", "/api/oauth/token", "application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=x&client_secret=y")]
    public async Task A_host_header_oauth_cannot_build_an_address_from_is_invalid_request(string method, string path, string? contentType, string body)
    {
        // OpenIddict did not recognise its endpoint, and the passthrough endpoints threw.
        var bytes = Encoding.ASCII.GetBytes(body);
        var headers = new List<KeyValuePair<string, string>> { new("Host", new string('h', 4000)), new("Authorization", "Bearer lk_at_x") };
        if (contentType is not null)
        {
            headers.Add(new("Content-Type", contentType));
        }
        headers.Add(new("Content-Length", bytes.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        headers.Add(new("Connection", "close"));

        var response = await RawHttpClient.SendAsync(server.BaseAddress, new RawRequest(method, path, headers, bytes));

        Assert.True(response.Status == 400, $"{response.Status} {response.BodyText}");
    }

    [Theory]
    [InlineData("""{"jsonrpc":"2.0","id":["",1,null],"method":"tools/call","params":{}}""")]
    [InlineData("""{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"x"}""")]
    [InlineData("""{"jsonrpc":"2.0","id":1,"owner_id":"x"}""")]
    [InlineData("""{"jsonrpc":"1.0","id":1,"method":"ping"}""")]
    [InlineData("""{"jsonrpc":2.0,"id":1,"method":"ping"}""")]
    [InlineData("""{}""")]
    [InlineData("""[]""")]
    [InlineData("""42""")]
    public async Task The_gateway_refuses_what_is_not_json_rpc_instead_of_relaying_it(string body) =>
        // The upstream answered such messages with 500, which the gateway relayed.
        Assert.Equal(-32600, await GatewayRefusalCodeAsync(body));

    /// <summary>The JSON-RPC error code of the gateway's 400 answer to <paramref name="body"/>.</summary>
    private async Task<int> GatewayRefusalCodeAsync(string body)
    {
        var caller = await TestBroker.CallerAsync(server);
        var created = await TestBroker.PostAsync(caller, "/mcp/servers", new { name = "Tools", url = "https://tools.example.com/mcp" }, HttpStatusCode.Created);

        var response = await caller.Client.PostAsync($"/mcp/servers/{created.GetProperty("id").GetString()}/mcp",
            new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return error.RootElement.GetProperty("error").GetProperty("code").GetInt32();
    }

    [Theory]
    [InlineData("""{"jsonrpc":"\ud800","id":"a","params":{}}""")]
    [InlineData("""{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\udc00x","arguments":{}}}""")]
    public async Task The_gateway_refuses_strings_with_a_lone_surrogate_as_unreadable(string body) =>
        // Comparing such a string threw in the gateway: a 500.
        Assert.Equal(-32700, await GatewayRefusalCodeAsync(body));

    private Task<RawResponse> SendRawAsync(string method, string path, string? contentType, string body)
    {
        var bytes = Encoding.ASCII.GetBytes(body);
        var headers = new List<KeyValuePair<string, string>> { new("Host", server.BaseAddress.Authority) };
        if (contentType is not null)
        {
            headers.Add(new("Content-Type", contentType));
        }
        headers.Add(new("Content-Length", bytes.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        headers.Add(new("Connection", "close"));
        return RawHttpClient.SendAsync(server.BaseAddress, new RawRequest(method, path, headers, bytes));
    }
}

public sealed class FuzzFindingsTestsOnSqlite(SqliteServer server) : FuzzFindingsTests(server), IClassFixture<SqliteServer>;

public sealed class FuzzFindingsTestsOnPostgres(PostgresServer server) : FuzzFindingsTests(server), IClassFixture<PostgresServer>;

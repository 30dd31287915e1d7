using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static Latchkey.Tests.Infrastructure.TestBroker;

namespace Latchkey.Tests.Broker;

/// <summary><c>/mcp/proxy/{credential}/{path}</c> against the loopback provider's API.</summary>
public abstract class CredentialProxyTests(LatchkeyServerFixture server) : IAsyncLifetime
{
    private TestOAuthProvider _provider = null!;

    public async Task InitializeAsync() => _provider = await TestOAuthProvider.StartAsync();

    public async Task DisposeAsync() => await _provider.DisposeAsync();

    [Fact]
    public async Task A_call_goes_to_the_providers_api_with_the_credential_and_without_the_callers()
    {
        var caller = await CallerAsync(server);
        var credentialId = await ConnectedCredentialAsync(caller, _provider);

        using var request = new HttpRequestMessage(HttpMethod.Get, $"/mcp/proxy/{credentialId}/echo?page=2&q=a%2Fb");
        request.Headers.Add("X-Custom", "kept");
        request.Headers.Add("Cookie", "session=caller");
        var response = await caller.Client.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();

        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        using var echo = JsonDocument.Parse(body);
        Assert.Equal("/api/echo", echo.RootElement.GetProperty("path").GetString());
        Assert.Equal("?page=2&q=a%2Fb", echo.RootElement.GetProperty("query").GetString());
        var seen = _provider.ApiRequests.Last().Headers;
        Assert.Equal("Bearer " + _provider.LastIssuedAccessToken, seen["Authorization"]);
        Assert.Equal("kept", seen["X-Custom"]);
        Assert.False(seen.ContainsKey("X-API-Key"));
        Assert.False(seen.ContainsKey("Cookie"));
        Assert.DoesNotContain(_provider.LastIssuedAccessToken!, body);

        // Every call is audited with what was asked and answered (never the query).
        await server.Services.GetRequiredService<Latchkey.Features.Broker.Credentials.CredentialAudit>().FlushAsync();
        var audited = await server.WithDbAsync(db => db.BrokerCredentialAudit.AsNoTracking().Where(a => a.CredentialId == credentialId && a.Action == "proxy").Select(a => a.Outcome).ToListAsync());
        Assert.Contains("GET /api/echo 200", audited);
        Assert.DoesNotContain(audited, o => o.Contains("page=2", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Bodies_stream_both_ways_and_large_ones_arrive_whole()
    {
        var caller = await CallerAsync(server);
        var credentialId = await ConnectedCredentialAsync(caller, _provider);

        foreach (var size in new[] { 10, 3 * 1024 * 1024 })
        {
            var payload = RandomNumberGenerator.GetBytes(size);
            using var content = new StreamContent(new MemoryStream(payload));
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            var response = await caller.Client.PostAsync($"/mcp/proxy/{credentialId}/upload", content);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, text);
            using var answer = JsonDocument.Parse(text);
            Assert.Equal(size, answer.RootElement.GetProperty("bytes").GetInt64());
            Assert.Equal(Convert.ToHexString(SHA256.HashData(payload)), answer.RootElement.GetProperty("sha256").GetString());
        }

        using var stream = await caller.Client.GetStreamAsync($"/mcp/proxy/{credentialId}/stream?chunks=5");
        using var reader = new StreamReader(stream);
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal($"chunk {i}", await reader.ReadLineAsync());
        }
        Assert.Null(await reader.ReadLineAsync());
    }

    [Fact]
    public async Task A_401_gets_one_refresh_and_one_retry()
    {
        var caller = await CallerAsync(server);
        var credentialId = await ConnectedCredentialAsync(caller, _provider);
        await ExpireSoonAsync(server, credentialId, seconds: 3600);
        _provider.InvalidateAccessTokens();
        var before = _provider.RefreshCalls;

        var response = await caller.Client.PostAsync($"/mcp/proxy/{credentialId}/echo", new StringContent("{\"x\":1}", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(before + 1, _provider.RefreshCalls);
        Assert.Equal("{\"x\":1}", JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("body").GetString());

        // A provider that keeps refusing gets its 401 passed back after the one retry.
        _provider.ApiAccepts = _ => false;
        await ExpireSoonAsync(server, credentialId, seconds: 3600);
        var refused = await caller.Client.GetAsync($"/mcp/proxy/{credentialId}/echo");
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal(before + 2, _provider.RefreshCalls);
    }

    [Theory]
    [InlineData("/../token")]
    [InlineData("/%2e%2e/token")]
    [InlineData("/a/../../token")]
    [InlineData("/./echo")]
    [InlineData("/a/..%2F..%2Ftoken")]
    [InlineData("/..%5Ctoken")]
    [InlineData("/..;/token")]
    [InlineData("/%252e%252e/token")]
    public async Task A_path_that_leaves_the_api_base_is_refused(string path)
    {
        var caller = await CallerAsync(server);
        var credentialId = await ConnectedCredentialAsync(caller, _provider);
        var calls = _provider.TokenCalls;

        // Sent as given: HttpClient would resolve the dot segments itself.
        var response = await Latchkey.Tests.Fuzz.RawHttpClient.SendAsync(server.BaseAddress,
            new Latchkey.Tests.Fuzz.RawRequest("GET", $"/mcp/proxy/{credentialId}{path}", [new("X-API-Key", caller.ApiKey)], []));

        Assert.True(response.Status is 400 or 404, $"{response.Status} {response.BodyText}");
        Assert.Equal(calls, _provider.TokenCalls);
        Assert.DoesNotContain(_provider.ApiRequests, r => r.PathAndQuery.Contains("token", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_redirect_is_passed_back_not_followed_and_echoed_secrets_are_masked()
    {
        var caller = await CallerAsync(server);
        var providerId = (await SendAsync(caller, HttpMethod.Post, "/mcp/providers",
            new { provider = "custom", custom = _provider.TypedDefinition("bearer", new { test_request = (object?)null }) }, HttpStatusCode.Created)).GetProperty("id").GetString()!;
        const string token = "pat-very-secret-value-123";
        _provider.ApiAccepts = headers => headers.Authorization.ToString() == "Bearer " + token;
        var credentialId = (await SendAsync(caller, HttpMethod.Post, "/mcp/credentials", new { provider_id = providerId, token }, HttpStatusCode.Created)).GetProperty("id").GetString()!;

        var redirect = await caller.Client.GetAsync($"/mcp/proxy/{credentialId}/redirect");
        Assert.Equal(HttpStatusCode.Redirect, redirect.StatusCode);
        Assert.Equal("https://elsewhere.example/steal", redirect.Headers.Location!.AbsoluteUri);

        // The provider echoes the token in the body: the caller gets it masked, the length kept.
        var echoed = await caller.Client.PostAsync($"/mcp/proxy/{credentialId}/echo", new StringContent($"my token is {token}!", Encoding.UTF8, "text/plain"));
        var text = await echoed.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, echoed.StatusCode);
        Assert.DoesNotContain(token, text);
        Assert.Contains(new string('*', token.Length), text);

        // Another account cannot use the credential; a credential without an API base has nothing to proxy to.
        var other = await CallerAsync(server);
        Assert.Equal(HttpStatusCode.NotFound, (await other.Client.GetAsync($"/mcp/proxy/{credentialId}/echo")).StatusCode);
    }
}

public sealed class CredentialProxyTestsOnSqlite(SqliteServer server) : CredentialProxyTests(server), IClassFixture<SqliteServer>;

public sealed class CredentialProxyTestsOnPostgres(PostgresServer server) : CredentialProxyTests(server), IClassFixture<PostgresServer>;

using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static Latchkey.Tests.Infrastructure.TestBroker;

namespace Latchkey.Tests.Broker;

/// <summary>
/// Credentials that are typed in (API key, basic, bearer, custom headers) and client-credentials
/// tokens, end-user metadata, and their use through the MCP gateway, against the loopback provider.
/// </summary>
public abstract class CredentialKindsTests(LatchkeyServerFixture server) : IAsyncLifetime
{
    private TestOAuthProvider _provider = null!;

    public async Task InitializeAsync() => _provider = await TestOAuthProvider.StartAsync();

    public async Task DisposeAsync() => await _provider.DisposeAsync();

    private static async Task<string> AddCustomProviderAsync(BrokerCaller caller, object definition, string? clientId = null, string? clientSecret = null)
    {
        var created = await SendAsync(caller, HttpMethod.Post, "/mcp/providers",
            new Dictionary<string, object?> { ["provider"] = "custom", ["custom"] = definition, ["client_id"] = clientId, ["client_secret"] = clientSecret }
                .Where(p => p.Value is not null).ToDictionary(), HttpStatusCode.Created);
        return created.GetProperty("id").GetString()!;
    }

    public static TheoryData<string, string, string, string> Kinds => new()
    {
        // auth type, definition extras, credential fields, the header the API must see ("name: value")
        { "api_key", """{"header_name":"X-Api-Token"}""", """{"api_key":"sk-live-1"}""", "X-Api-Token: sk-live-1" },
        { "api_key", """{"header_name":"Authorization","header_prefix":"Token token="}""", """{"api_key":"pd-key"}""", "Authorization: Token token=pd-key" },
        { "bearer", "{}", """{"token":"pat-123"}""", "Authorization: Bearer pat-123" },
        { "basic", "{}", """{"username":"ada","password":"p:ss"}""", "Authorization: Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("ada:p:ss")) },
        { "basic", """{"basic_password":"X"}""", """{"username":"fd-key"}""", "Authorization: Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("fd-key:X")) },
        { "header", """{"header_names":["X-App-Id","X-App-Key"]}""", """{"headers":{"X-App-Id":"app1","X-App-Key":"key1"}}""", "X-App-Key: key1" },
    };

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_typed_in_credential_is_tried_stored_encrypted_and_handed_out_in_its_providers_form(string authType, string extras, string fields, string expected)
    {
        var caller = await CallerAsync(server);
        var providerId = await AddCustomProviderAsync(caller, _provider.TypedDefinition(authType, JsonDocument.Parse(extras).RootElement));
        var (headerName, headerValue) = (expected.Split(": ", 2)[0], expected.Split(": ", 2)[1]);
        _provider.ApiAccepts = headers => headers[headerName].ToString() == headerValue;

        // A credential the provider refuses is not stored.
        var body = JsonSerializer.Deserialize<Dictionary<string, object?>>(fields)!;
        var wrong = body.ToDictionary(p => p.Key, p => p.Key == "headers" ? (object?)new Dictionary<string, string> { ["X-App-Id"] = "app1", ["X-App-Key"] = "wrong" } : "wrong");
        wrong["provider_id"] = providerId;
        var refused = await SendAsync(caller, HttpMethod.Post, "/mcp/credentials", wrong, HttpStatusCode.BadRequest);
        Assert.Equal("invalid_credential", refused.GetProperty("error").GetString());
        Assert.Contains("401", refused.GetProperty("message").GetString());
        Assert.Empty((await SendAsync(caller, HttpMethod.Get, "/mcp/credentials", null, HttpStatusCode.OK)).GetProperty("credentials").EnumerateArray());

        body["provider_id"] = providerId;
        body["label"] = "Ops account";
        body["end_user_id"] = "user-42";
        body["tags"] = new[] { "team:ops", "prod" };
        var created = await SendAsync(caller, HttpMethod.Post, "/mcp/credentials", body, HttpStatusCode.Created);
        var credentialId = created.GetProperty("id").GetString()!;
        Assert.Equal(authType, created.GetProperty("kind").GetString());
        Assert.Equal("active", created.GetProperty("status").GetString());
        Assert.Equal("Ops account", created.GetProperty("external_account_label").GetString());
        Assert.Equal("user-42", created.GetProperty("end_user_id").GetString());
        Assert.Equal(["prod", "team:ops"], created.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal("ok", created.GetProperty("last_check_outcome").GetString());

        var read = await PostAsync(caller, $"/mcp/credentials/{credentialId}/access-token", new { });
        Assert.Equal(headerValue, read.GetProperty("headers").GetProperty(headerName).GetString());
        Assert.DoesNotContain("wrong", read.GetRawText());

        // Encrypted at rest: none of the typed-in values is stored as such.
        var stored = await server.WithDbAsync(db => db.BrokerCredentials.AsNoTracking().SingleAsync(c => c.Id == credentialId));
        foreach (var secret in new[] { "sk-live-1", "pd-key", "pat-123", "p:ss", "fd-key", "key1" })
        {
            Assert.DoesNotContain(secret, stored.AccessTokenCiphertext + stored.Scopes + stored.Tags);
        }

        // Not an OAuth provider: no flow, no refresh.
        var flow = await SendAsync(caller, HttpMethod.Post, "/mcp/oauth/init", new { provider_id = providerId, redirect_uri = "https://agent.example.com/cb" }, HttpStatusCode.BadRequest);
        Assert.Contains("POST /mcp/credentials", flow.GetProperty("message").GetString());
        var refresh = await SendAsync(caller, HttpMethod.Post, "/mcp/oauth/refresh-token", new { credential_id = credentialId }, HttpStatusCode.Conflict);
        Assert.Equal("not_refreshable", refresh.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Bad_typed_in_credentials_and_definitions_are_refused_with_the_reason()
    {
        var caller = await CallerAsync(server);
        var apiKeyProvider = await AddCustomProviderAsync(caller, _provider.TypedDefinition("api_key"));
        foreach (var (body, needle) in new (object, string)[]
        {
            (new { provider_id = apiKeyProvider }, "api_key"),
            (new { provider_id = apiKeyProvider, api_key = "a\nb" }, "single line"),
            (new { provider_id = apiKeyProvider, api_key = "k", tags = new[] { "has space" } }, "tags"),
            (new { provider_id = apiKeyProvider, api_key = "k", scopes = new[] { "x" } }, "client_credentials"),
            (new { provider_id = "provider_nope_001", api_key = "k" }, "no provider"),
            (new { provider_id = apiKeyProvider, api_key = "k", tags = new string?[] { null } }, "tags"),
        })
        {
            var response = await caller.Client.PostAsJsonAsync("/mcp/credentials", body);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.NotFound, text);
            Assert.Contains(needle, text, StringComparison.OrdinalIgnoreCase);
        }

        foreach (var (definition, needle) in new (object, string)[]
        {
            (_provider.TypedDefinition("magic"), "auth_type"),
            (_provider.TypedDefinition("api_key", new { header_name = "Host" }), "cannot carry a credential"),
            (_provider.TypedDefinition("header", new { header_names = Array.Empty<string>() }), "header_names"),
            (_provider.TypedDefinition("api_key", new { test_request = new { method = "GET", path = "//evil.example/x" } }), "test_request"),
            (_provider.TypedDefinition("api_key", new { api_hosts = new[] { "other.example" } }), "api_hosts"),
            (_provider.TypedDefinition("api_key", new { header_name = "Content-Language" }), "cannot carry a credential"),
            (_provider.TypedDefinition("header", new { header_names = new string?[] { null } }), "null"),
            (_provider.TypedDefinition("api_key", new { extra_headers = new Dictionary<string, string?> { ["X-Version"] = null } }), "null"),
        })
        {
            var response = await caller.Client.PostAsJsonAsync("/mcp/providers", new { provider = "custom", custom = definition });
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, text);
            Assert.Contains(needle, text, StringComparison.Ordinal);
        }
        // A typed-in provider takes no OAuth client.
        var withClient = await caller.Client.PostAsJsonAsync("/mcp/providers", new { provider = "custom", custom = _provider.TypedDefinition("api_key"), client_id = "x", client_secret = "y" });
        Assert.Equal(HttpStatusCode.BadRequest, withClient.StatusCode);
    }

    [Fact]
    public async Task A_provider_that_cannot_be_reached_stores_nothing_unless_verify_is_false()
    {
        var caller = await CallerAsync(server);
        var unreachable = new Dictionary<string, object?>(_provider.TypedDefinition("bearer")) { ["api_base_url"] = "http://127.0.0.1:1/api" };
        var providerId = await AddCustomProviderAsync(caller, unreachable);

        var failed = await SendAsync(caller, HttpMethod.Post, "/mcp/credentials", new { provider_id = providerId, token = "t" }, HttpStatusCode.BadGateway);
        Assert.Contains("\"verify\": false", failed.GetProperty("message").GetString());
        var stored = await SendAsync(caller, HttpMethod.Post, "/mcp/credentials", new { provider_id = providerId, token = "t", verify = false }, HttpStatusCode.Created);
        Assert.Equal(JsonValueKind.Null, stored.GetProperty("last_checked_at").ValueKind);
    }

    [Fact]
    public async Task A_client_credentials_token_is_fetched_then_fetched_again_when_it_expires()
    {
        var caller = await CallerAsync(server);
        var providerId = await AddCustomProviderAsync(caller, _provider.TypedDefinition("client_credentials"), TestOAuthProvider.ClientId, TestOAuthProvider.ClientSecret);
        var before = _provider.ClientCredentialsCalls;

        var created = await SendAsync(caller, HttpMethod.Post, "/mcp/credentials", new { provider_id = providerId, scopes = new[] { "reports", "billing" }, tags = new[] { "m2m" } }, HttpStatusCode.Created);
        var credentialId = created.GetProperty("id").GetString()!;
        Assert.Equal("client_credentials", created.GetProperty("kind").GetString());
        Assert.Equal(before + 1, _provider.ClientCredentialsCalls);
        Assert.Equal(["billing", "reports"], created.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()).Order());
        var first = await PostAsync(caller, $"/mcp/credentials/{credentialId}/access-token", new { });
        Assert.Equal(_provider.LastIssuedAccessToken, first.GetProperty("access_token").GetString());
        Assert.Equal("Bearer " + _provider.LastIssuedAccessToken, first.GetProperty("headers").GetProperty("Authorization").GetString());

        // Expiring: the next read fetches a new token with the client credentials grant, once.
        await ExpireSoonAsync(server, credentialId);
        var second = await PostAsync(caller, $"/mcp/credentials/{credentialId}/access-token", new { });
        Assert.Equal(before + 2, _provider.ClientCredentialsCalls);
        Assert.NotEqual(first.GetProperty("access_token").GetString(), second.GetProperty("access_token").GetString());
        Assert.Equal(0, _provider.RefreshCalls);

        // And a forced refresh works too; a wrong client secret is a provider error, not a 500.
        await ExpireSoonAsync(server, credentialId, seconds: 3600);
        Assert.Equal("active", (await PostAsync(caller, "/mcp/oauth/refresh-token", new { credential_id = credentialId })).GetProperty("status").GetString());
        Assert.Equal(before + 3, _provider.ClientCredentialsCalls);
        // A deployment-wide client-credentials provider is the deployment's own client: no account may take its token.
        await using (var scope = server.Services.CreateAsyncScope())
        {
            var (shared, problem) = await scope.ServiceProvider.GetRequiredService<Latchkey.Features.Broker.Providers.ProviderService>().CreateAsync(null,
                new(Latchkey.Features.Broker.Providers.ProviderService.CustomKey, TestOAuthProvider.ClientId, TestOAuthProvider.ClientSecret, "Shared machine client", null,
                    JsonSerializer.Deserialize<Latchkey.Features.Broker.Providers.ProviderDefinition>(JsonSerializer.Serialize(_provider.TypedDefinition("client_credentials")),
                        Latchkey.Features.Broker.Providers.ProviderCatalog.Json)), CancellationToken.None);
            Assert.True(shared is not null, problem);
            var calls = _provider.ClientCredentialsCalls;
            await SendAsync(caller, HttpMethod.Post, "/mcp/credentials", new { provider_id = shared.Id }, HttpStatusCode.NotFound);
            Assert.Equal(calls, _provider.ClientCredentialsCalls);
        }
        var badClient = await AddCustomProviderAsync(caller, _provider.TypedDefinition("client_credentials"), TestOAuthProvider.ClientId, "wrong-secret");
        var refused = await SendAsync(caller, HttpMethod.Post, "/mcp/credentials", new { provider_id = badClient }, HttpStatusCode.BadGateway);
        Assert.Contains("invalid_client", refused.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Credentials_carry_end_user_ids_and_tags_and_are_listed_by_them()
    {
        var caller = await CallerAsync(server);
        var apiKeyProvider = await AddCustomProviderAsync(caller, _provider.TypedDefinition("api_key", new { test_request = (object?)null }));
        async Task<string> AddAsync(string endUser, params string[] tags) =>
            (await SendAsync(caller, HttpMethod.Post, "/mcp/credentials", new { provider_id = apiKeyProvider, api_key = "k-" + endUser, end_user_id = endUser, tags }, HttpStatusCode.Created))
            .GetProperty("id").GetString()!;
        var alice = await AddAsync("alice", "prod", "team_a");
        var bob = await AddAsync("bob", "staging");
        var alice2 = await AddAsync("alice", "staging", "teamXa");

        // An OAuth flow started for an end user carries its id and tags to the credential.
        var oauthProvider = await AddProviderAsync(caller, _provider);
        var init = await PostAsync(caller, "/mcp/oauth/init", new { provider_id = oauthProvider, redirect_uri = "https://agent.example.com/cb", end_user_id = "carol", tags = new[] { "prod" } });
        var state = init.GetProperty("state").GetString()!;
        await PostAsync(caller, "/mcp/oauth/callback", new { code = await VisitAsync(init.GetProperty("auth_url").GetString()!), state });
        var carol = (await PostAsync(caller, "/mcp/oauth/exchange-token", new { state })).GetProperty("credential_id").GetString()!;

        async Task<string[]> ListAsync(string query) =>
            [.. (await SendAsync(caller, HttpMethod.Get, "/mcp/credentials" + query, null, HttpStatusCode.OK)).GetProperty("credentials").EnumerateArray().Select(c => c.GetProperty("id").GetString()!).Order()];
        Assert.Equal(new[] { alice, alice2 }.Order(), await ListAsync("?end_user_id=alice"));
        Assert.Equal(new[] { alice, carol }.Order(), await ListAsync("?tag=prod"));
        Assert.Equal([alice], await ListAsync("?tag=team_a"));
        Assert.Equal([alice2], await ListAsync("?tag=staging&end_user_id=alice"));
        Assert.Equal([carol], await ListAsync($"?provider_id={oauthProvider}"));
        Assert.Empty(await ListAsync("?end_user_id=nobody"));
        await SendAsync(caller, HttpMethod.Get, "/mcp/credentials?tag=bad%20tag", null, HttpStatusCode.BadRequest);
        // A NUL in a filter is a 400 on both databases (PostgreSQL cannot compare it), found by the fuzz campaign.
        await SendAsync(caller, HttpMethod.Get, "/mcp/credentials?status=%00", null, HttpStatusCode.BadRequest);
        await SendAsync(caller, HttpMethod.Get, "/mcp/credentials?end_user_id=a%00b", null, HttpStatusCode.BadRequest);

        var changed = await SendAsync(caller, HttpMethod.Patch, $"/mcp/credentials/{bob}", new { tags = new[] { "prod" }, end_user_id = "robert" }, HttpStatusCode.OK);
        Assert.Equal("robert", changed.GetProperty("end_user_id").GetString());
        Assert.Equal(new[] { alice, bob, carol }.Order(), await ListAsync("?tag=prod"));
        await SendAsync(caller, HttpMethod.Patch, $"/mcp/credentials/{bob}", new { tags = new[] { "x y" } }, HttpStatusCode.BadRequest);

        // Another account's filters see none of these.
        var other = await CallerAsync(server);
        Assert.Empty((await SendAsync(other, HttpMethod.Get, "/mcp/credentials?tag=prod", null, HttpStatusCode.OK)).GetProperty("credentials").EnumerateArray());
        await SendAsync(other, HttpMethod.Patch, $"/mcp/credentials/{bob}", new { tags = new[] { "mine" } }, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task An_api_key_credential_goes_to_an_mcp_tool_in_its_providers_header()
    {
        await using var upstream = await TestMcpUpstream.StartAsync();
        var caller = await CallerAsync(server);
        var providerId = await AddCustomProviderAsync(caller, _provider.TypedDefinition("api_key", new { header_name = TestMcpUpstream.CustomHeader, test_request = (object?)null }));
        var credentialId = (await SendAsync(caller, HttpMethod.Post, "/mcp/credentials", new { provider_id = providerId, api_key = "upstream-key-7" }, HttpStatusCode.Created))
            .GetProperty("id").GetString()!;
        var created = await SendAsync(caller, HttpMethod.Post, "/mcp/servers", new { name = "Keyed tools", url = upstream.Endpoint.AbsoluteUri, default_credential_id = credentialId }, HttpStatusCode.Created);

        await using var agent = await McpAgents.ConnectAsync(new Uri(created.GetProperty("gateway_url").GetString()!), caller.ApiKey);
        var result = await agent.CallToolAsync("read_repo", new Dictionary<string, object?> { ["repo"] = "latchkey" });

        var call = Assert.Single(upstream.CallsOf("read_repo"));
        Assert.Equal("upstream-key-7", call.CustomHeader);
        Assert.Null(call.Authorization);
        Assert.Contains("latchkey", McpAgents.Text(result));
    }
}

public sealed class CredentialKindsTestsOnSqlite(SqliteServer server) : CredentialKindsTests(server), IClassFixture<SqliteServer>;

public sealed class CredentialKindsTestsOnPostgres(PostgresServer server) : CredentialKindsTests(server), IClassFixture<PostgresServer>;

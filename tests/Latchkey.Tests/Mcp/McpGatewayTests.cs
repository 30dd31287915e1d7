using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Latchkey.Features.Broker.Credentials;
using Latchkey.Features.Mcp;
using Latchkey.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ModelContextProtocol;
using ModelContextProtocol.Authentication;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using static Latchkey.Tests.Infrastructure.McpAgents;
using static Latchkey.Tests.Infrastructure.TestBroker;

namespace Latchkey.Tests.Mcp;

/// <summary>
/// MCP servers, tool mappings and the gateway, with the official SDK on both sides: an upstream
/// server on loopback that reports the credential each call carried, and SDK clients for agents.
/// </summary>
public abstract class McpGatewayTests(LatchkeyServerFixture server) : IAsyncLifetime
{
    private TestOAuthProvider _provider = null!;
    private TestMcpUpstream _upstream = null!;

    public async Task InitializeAsync()
    {
        _provider = await TestOAuthProvider.StartAsync();
        _upstream = await TestMcpUpstream.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _upstream.DisposeAsync();
        await _provider.DisposeAsync();
    }

    private static async Task<JsonElement> CreateServerAsync(BrokerCaller caller, object body, HttpStatusCode expected = HttpStatusCode.Created)
    {
        var response = await caller.Client.PostAsJsonAsync("/mcp/servers", body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>A "Repo tools" server on the test upstream whose read_repo carries <paramref name="mapped"/> (in <paramref name="header"/>; null: Authorization).</summary>
    private async Task<(JsonElement Created, string Id)> RepoToolsAsync(BrokerCaller caller, string mapped, string? header = null, string? defaultCredential = null)
    {
        var created = await CreateServerAsync(caller, new { name = "Repo tools", url = _upstream.Endpoint.AbsoluteUri, default_credential_id = defaultCredential });
        var id = created.GetProperty("id").GetString()!;
        await SendAsync(caller, HttpMethod.Put, $"/mcp/servers/{id}/tools/read_repo/credential", new { credential_id = mapped, header }, HttpStatusCode.OK);
        return (created, id);
    }

    private static async Task<string> CurrentTokenAsync(BrokerCaller caller, string credentialId) =>
        (await PostAsync(caller, $"/mcp/credentials/{credentialId}/access-token", new { })).GetProperty("access_token").GetString()!;

    private static Uri GatewayUrl(JsonElement created) => new(created.GetProperty("gateway_url").GetString()!);

    /// <summary>An SDK client for the gateway, authenticating with the API key; every byte it receives is kept.</summary>
    private static async Task<(McpClient Client, RecordingHandler Recorder)> ConnectAgentAsync(Uri gateway, string apiKey, string? protocolVersion = null)
    {
        var recorder = new RecordingHandler(new SocketsHttpHandler());
        var transport = new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = gateway,
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = new Dictionary<string, string> { ["X-API-Key"] = apiKey },
        }, new HttpClient(recorder), ownsHttpClient: true);
        var client = await McpClient.CreateAsync(transport, new McpClientOptions { ProtocolVersion = protocolVersion });
        return (client, recorder);
    }


    [Fact]
    public async Task Servers_are_registered_changed_and_deleted_by_their_owner_and_no_one_else()
    {
        var caller = await CallerAsync(server);
        var other = await CallerAsync(server);
        var credentialId = await ConnectedCredentialAsync(caller, _provider);
        var othersCredential = await ConnectedCredentialAsync(other, _provider);

        var created = await CreateServerAsync(caller, new { name = "Repo tools", url = _upstream.Endpoint.AbsoluteUri, default_credential_id = credentialId });
        var id = created.GetProperty("id").GetString()!;
        Assert.Matches("^mcp_[0-9a-f]{16}$", id);
        Assert.Equal($"{server.BaseAddress.AbsoluteUri.TrimEnd('/')}/mcp/servers/{id}/mcp", created.GetProperty("gateway_url").GetString());
        Assert.Equal(credentialId, created.GetProperty("default_credential").GetProperty("credential_id").GetString());
        Assert.Equal("Authorization", created.GetProperty("default_credential").GetProperty("header").GetString());

        var listed = await SendAsync(caller, HttpMethod.Get, "/mcp/servers", null, HttpStatusCode.OK);
        Assert.Equal([id], listed.GetProperty("servers").EnumerateArray().Select(s => s.GetProperty("id").GetString()));
        Assert.Empty((await SendAsync(other, HttpMethod.Get, "/mcp/servers", null, HttpStatusCode.OK)).GetProperty("servers").EnumerateArray());

        var changed = await SendAsync(caller, HttpMethod.Patch, $"/mcp/servers/{id}", new { name = "Renamed", default_header = "X-Upstream-Token" }, HttpStatusCode.OK);
        Assert.Equal("Renamed", changed.GetProperty("name").GetString());
        Assert.Equal("X-Upstream-Token", changed.GetProperty("default_credential").GetProperty("header").GetString());
        var cleared = await SendAsync(caller, HttpMethod.Patch, $"/mcp/servers/{id}", new Dictionary<string, object?> { ["default_credential_id"] = null }, HttpStatusCode.OK);
        Assert.Equal(JsonValueKind.Null, cleared.GetProperty("default_credential").ValueKind);

        // Another account sees nothing of it, and cannot use its own credential on it or this one's on its own.
        foreach (var (method, path, body) in new (HttpMethod, string, object?)[]
        {
            (HttpMethod.Get, $"/mcp/servers/{id}", null),
            (HttpMethod.Patch, $"/mcp/servers/{id}", new { name = "mine" }),
            (HttpMethod.Delete, $"/mcp/servers/{id}", null),
            (HttpMethod.Get, $"/mcp/servers/{id}/tools", null),
            (HttpMethod.Get, $"/mcp/servers/{id}/tool-calls", null),
            (HttpMethod.Put, $"/mcp/servers/{id}/tools/read_repo/credential", new { credential_id = othersCredential }),
        })
        {
            var refused = await SendAsync(other, method, path, body, HttpStatusCode.NotFound);
            Assert.Equal("server_not_found", refused.GetProperty("error").GetString());
        }
        var foreign = await SendAsync(caller, HttpMethod.Put, $"/mcp/servers/{id}/tools/read_repo/credential", new { credential_id = othersCredential }, HttpStatusCode.NotFound);
        Assert.Equal("credential_not_found", foreign.GetProperty("error").GetString());
        await CreateServerAsync(other, new { name = "Borrowed", url = _upstream.Endpoint.AbsoluteUri, default_credential_id = credentialId }, HttpStatusCode.NotFound);

        // Bad input is refused with the reason, and nothing is stored.
        await CreateServerAsync(caller, new { url = _upstream.Endpoint.AbsoluteUri }, HttpStatusCode.BadRequest);
        await CreateServerAsync(caller, new { name = "x", url = "ftp://example.com/mcp" }, HttpStatusCode.BadRequest);
        await CreateServerAsync(caller, new { name = "x", url = "not a url" }, HttpStatusCode.BadRequest);
        await CreateServerAsync(caller, new { name = "x", url = _upstream.Endpoint.AbsoluteUri, surprise = true }, HttpStatusCode.BadRequest);
        await SendAsync(caller, HttpMethod.Put, $"/mcp/servers/{id}/tools/read_repo/credential", new { credential_id = credentialId, header = "Mcp-Session-Id" }, HttpStatusCode.BadRequest);
        await SendAsync(caller, HttpMethod.Put, $"/mcp/servers/{id}/tools/read_repo/credential", new { credential_id = credentialId, header = "Bad Header" }, HttpStatusCode.BadRequest);
        await SendAsync(caller, HttpMethod.Put, $"/mcp/servers/{id}/tools/a%20b/credential", new { credential_id = credentialId }, HttpStatusCode.BadRequest);
        await SendAsync(caller, HttpMethod.Patch, $"/mcp/servers/{id}", new { owner_id = "someone" }, HttpStatusCode.BadRequest);
        await SendAsync(caller, HttpMethod.Patch, $"/mcp/servers/{id}", new { name = 42 }, HttpStatusCode.BadRequest);
        Assert.Equal("Renamed", (await SendAsync(caller, HttpMethod.Get, $"/mcp/servers/{id}", null, HttpStatusCode.OK)).GetProperty("name").GetString());

        await SendAsync(caller, HttpMethod.Delete, $"/mcp/servers/{id}", null, HttpStatusCode.NoContent);
        await SendAsync(caller, HttpMethod.Get, $"/mcp/servers/{id}", null, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task The_private_network_guard_refuses_loopback_upstreams_unless_allowed()
    {
        var options = server.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<McpOptions>>().Value;
        Assert.True(options.AllowPrivateNetworks);
        var guard = server.Services.GetRequiredService<Latchkey.Common.OutboundAddressGuard>();
        var error = await guard.CheckAsync(_upstream.Endpoint.AbsoluteUri, allowPrivateNetworks: false, CancellationToken.None);
        Assert.NotNull(error);
    }

    [Fact]
    public async Task The_tools_list_comes_from_the_upstream_with_each_tools_credential()
    {
        var caller = await CallerAsync(server);
        var mapped = await ConnectedCredentialAsync(caller, _provider);
        var fallback = await ConnectedCredentialAsync(caller, _provider);
        var (created, id) = await RepoToolsAsync(caller, mapped, TestMcpUpstream.CustomHeader, defaultCredential: fallback);
        await SendAsync(caller, HttpMethod.Put, $"/mcp/servers/{id}/tools/retired_tool/credential", new { credential_id = mapped }, HttpStatusCode.OK);

        _upstream.RequireAuthorization = true; // listing works only with the default credential presented
        var tools = await SendAsync(caller, HttpMethod.Get, $"/mcp/servers/{id}/tools", null, HttpStatusCode.OK);
        var byName = tools.GetProperty("tools").EnumerateArray().ToDictionary(t => t.GetProperty("name").GetString()!);
        Assert.Contains("count", byName.Keys);
        Assert.Equal("mapped", byName["read_repo"].GetProperty("credential_source").GetString());
        Assert.Equal(mapped, byName["read_repo"].GetProperty("credential").GetProperty("credential_id").GetString());
        Assert.Equal(TestMcpUpstream.CustomHeader, byName["read_repo"].GetProperty("credential").GetProperty("header").GetString());
        Assert.Equal("default", byName["search"].GetProperty("credential_source").GetString());
        Assert.Equal(fallback, byName["search"].GetProperty("credential").GetProperty("credential_id").GetString());
        Assert.Equal(["retired_tool"], tools.GetProperty("mappings_without_tool").EnumerateArray().Select(m => m.GetProperty("tool").GetString()));
        var fallbackToken = await CurrentTokenAsync(caller, fallback);
        Assert.All(_upstream.Requests, r => Assert.Equal("Bearer " + fallbackToken, r.Authorization));

        await SendAsync(caller, HttpMethod.Delete, $"/mcp/servers/{id}/tools/retired_tool/credential", null, HttpStatusCode.NoContent);
        await SendAsync(caller, HttpMethod.Delete, $"/mcp/servers/{id}/tools/retired_tool/credential", null, HttpStatusCode.NotFound);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("2025-11-25")]
    public async Task An_agent_calls_mapped_and_unmapped_tools_and_never_sees_a_token(string? protocolVersion)
    {
        var caller = await CallerAsync(server);
        var mapped = await ConnectedCredentialAsync(caller, _provider);
        var fallback = await ConnectedCredentialAsync(caller, _provider);
        var (created, id) = await RepoToolsAsync(caller, mapped, TestMcpUpstream.CustomHeader, defaultCredential: fallback);
        var mappedToken = await CurrentTokenAsync(caller, mapped);
        var fallbackToken = await CurrentTokenAsync(caller, fallback);

        var (agent, recorder) = await ConnectAgentAsync(GatewayUrl(created), caller.ApiKey, protocolVersion);
        await using (agent)
        {
            var tools = await agent.ListToolsAsync();
            Assert.Contains(tools, t => t.Name == "read_repo");

            var read = await agent.CallToolAsync("read_repo", new Dictionary<string, object?> { ["repo"] = "latchkey" });
            Assert.Equal($"read latchkey with credential {TestMcpUpstream.Fingerprint(mappedToken)}", Text(read));
            var search = await agent.CallToolAsync("search", new Dictionary<string, object?> { ["query"] = "gateway" });
            Assert.Equal($"searched gateway with credential {TestMcpUpstream.Fingerprint("Bearer " + fallbackToken)}", Text(search));
        }

        // The mapped tool carried exactly the mapped credential's current token, in its header, and nothing else.
        var readCall = Assert.Single(_upstream.CallsOf("read_repo"));
        Assert.Equal(mappedToken, readCall.CustomHeader);
        Assert.Null(readCall.Authorization);
        var searchCall = Assert.Single(_upstream.CallsOf("search"));
        Assert.Equal("Bearer " + fallbackToken, searchCall.Authorization);
        Assert.Null(searchCall.CustomHeader);
        // Everything else carried the server default; the agent's own API key and cookies never went upstream.
        Assert.All(_upstream.Requests.Where(r => r.Tool is null), r => Assert.Equal("Bearer " + fallbackToken, r.Authorization));
        Assert.All(_upstream.Requests, r => Assert.Null(r.ApiKeyHeader));
        Assert.All(_upstream.Requests, r => Assert.Null(r.Cookie));
        if (protocolVersion is not null)
        {
            // A session: its id passes through both ways, and closing the client ends it upstream.
            var sessions = _upstream.Requests.Where(r => r.RpcMethod != "initialize").Select(r => r.SessionId).Distinct().ToList();
            Assert.Single(sessions);
            Assert.NotNull(sessions[0]);
            Assert.Contains(_upstream.Requests, r => r.HttpMethod == "DELETE");
        }

        // The agent received no third-party token in any header or body.
        var received = recorder.Received();
        Assert.DoesNotContain(mappedToken, received);
        Assert.DoesNotContain(fallbackToken, received);

        // Each call is audited with its credential and outcome.
        await AuditedCallsAsync(id, 2);
        var audit = await SendAsync(caller, HttpMethod.Get, $"/mcp/servers/{id}/tool-calls", null, HttpStatusCode.OK);
        var calls = audit.GetProperty("tool_calls").EnumerateArray().ToList();
        // Each call's audit row is queued after its answer is relayed, so the next call's row may come
        // first: the pairs are compared, not their order.
        Assert.Equal([("read_repo", mapped), ("search", fallback)],
            calls.Select(c => (c.GetProperty("tool").GetString(), c.GetProperty("credential_id").GetString())).OrderBy(p => p.Item1, StringComparer.Ordinal));
        Assert.All(calls, c => Assert.Equal("ok", c.GetProperty("outcome").GetString()));
        var keyId = await ApiKeyIdAsync(caller);
        Assert.All(calls, c => Assert.Equal(keyId, c.GetProperty("caller").GetString()));
        var accountId = await server.WithDbAsync(db => db.Users.Where(u => u.Email == caller.AccountEmail).Select(u => u.Id).SingleAsync());
        Assert.Equal(2, await server.WithDbAsync(db => db.McpToolCalls.CountAsync(c => c.AccountId == accountId && c.ServerId == id && c.DurationMs >= 0)));
    }

    /// <summary>
    /// The server's audited calls once <paramref name="count"/> are written: a call is audited when
    /// its response has gone out, which can be just after the client has read it.
    /// </summary>
    private async Task<List<McpToolCall>> AuditedCallsAsync(string serverId, int count)
    {
        var audit = server.Services.GetRequiredService<ToolCallAudit>();
        for (var attempt = 0; ; attempt++)
        {
            await audit.FlushAsync();
            var calls = await server.WithDbAsync(db => db.McpToolCalls.Where(c => c.ServerId == serverId).OrderBy(c => c.Id).ToListAsync());
            if (calls.Count >= count || attempt == 100)
            {
                return calls;
            }
            await Task.Delay(50);
        }
    }

    private static async Task<string> ApiKeyIdAsync(BrokerCaller caller)
    {
        var keys = await caller.Account.Session.GetFromJsonAsync<JsonElement>("/api/keys");
        var list = keys.ValueKind == JsonValueKind.Array ? keys : keys.GetProperty("keys");
        return list.EnumerateArray().Single().GetProperty("id").GetString()!;
    }

    [Theory]
    [InlineData(null)]
    [InlineData("2025-11-25")]
    public async Task Progress_notifications_stream_through_and_cancellation_reaches_the_upstream(string? protocolVersion)
    {
        var caller = await CallerAsync(server);
        var created = await CreateServerAsync(caller, new { name = "Counter", url = _upstream.Endpoint.AbsoluteUri });
        var (agent, _) = await ConnectAgentAsync(GatewayUrl(created), caller.ApiKey, protocolVersion);
        await using (agent)
        {
            var steps = new List<ProgressNotificationValue>();
            var result = await agent.CallToolAsync("count", new Dictionary<string, object?> { ["n"] = 5 },
                new SynchronousProgress(value => { lock (steps) { steps.Add(value); } }));
            Assert.Equal("counted to 5", Text(result));
            Assert.Equal(5, steps.Count);

            using var cancel = new CancellationTokenSource();
            var waiting = agent.CallToolAsync("wait_for_cancel", cancellationToken: cancel.Token).AsTask();
            await _upstream.WaitStarted.Task.WaitAsync(TimeSpan.FromSeconds(30));
            if (protocolVersion is not null)
            {
                // In a session the protocol's cancellation is a notification naming the request.
                var id = Assert.Single(_upstream.CallsOf("wait_for_cancel")).RpcId!.Value;
                await agent.SendNotificationAsync(NotificationMethods.CancelledNotification, new CancelledNotificationParams
                {
                    RequestId = id.ValueKind == JsonValueKind.Number ? new RequestId(id.GetInt64()) : new RequestId(id.GetString()!),
                    Reason = "the agent changed its mind",
                });
            }
            else
            {
                // Without a session, closing the request is the cancellation; the gateway closes its upstream request too.
                await cancel.CancelAsync();
            }
            await _upstream.WaitCanceled.Task.WaitAsync(TimeSpan.FromSeconds(30));
            await cancel.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);

            // The session (if any) is still usable after the cancellation.
            Assert.Equal("counted to 2", Text(await agent.CallToolAsync("count", new Dictionary<string, object?> { ["n"] = 2 })));
        }
    }

    [Fact]
    public async Task A_credential_that_needs_reauthorization_gives_a_tool_error_with_the_url_that_fixes_it()
    {
        var caller = await CallerAsync(server);
        var mapped = await ConnectedCredentialAsync(caller, _provider);
        var (created, id) = await RepoToolsAsync(caller, mapped);
        // Expired, with no refresh token to renew it.
        await server.WithDbAsync(db => db.BrokerCredentials.Where(c => c.Id == mapped).ExecuteUpdateAsync(s => s
            .SetProperty(c => c.ExpiresAt, DateTimeOffset.UtcNow.AddMinutes(-5)).SetProperty(c => c.RefreshTokenCiphertext, (string?)null)));

        var (agent, _) = await ConnectAgentAsync(GatewayUrl(created), caller.ApiKey);
        await using (agent)
        {
            var result = await agent.CallToolAsync("read_repo", new Dictionary<string, object?> { ["repo"] = "latchkey" });
            Assert.True(result.IsError);
            Assert.Contains($"{server.BaseAddress.AbsoluteUri.TrimEnd('/')}/profile/connections#{mapped}", Text(result));
            Assert.Empty(_upstream.CallsOf("read_repo"));

            // A revoked credential (status needs_reauth) says the same; an unmapped tool still works.
            await server.WithDbAsync(db => db.BrokerCredentials.Where(c => c.Id == mapped).ExecuteUpdateAsync(s => s.SetProperty(c => c.Status, CredentialStatus.NeedsReauth)));
            var again = await agent.CallToolAsync("read_repo", new Dictionary<string, object?> { ["repo"] = "latchkey" });
            Assert.True(again.IsError);
            Assert.Contains("/profile/connections#" + mapped, Text(again));
            Assert.NotEqual(true, (await agent.CallToolAsync("search", new Dictionary<string, object?> { ["query"] = "q" })).IsError);
        }
        var outcomes = (await AuditedCallsAsync(id, 3)).Select(c => c.Outcome);
        Assert.Equal(["credential_needs_reauth", "credential_needs_reauth", "ok"], outcomes);
    }

    [Fact]
    public async Task An_expiring_credential_is_refreshed_through_the_broker_before_the_call()
    {
        var caller = await CallerAsync(server);
        var mapped = await ConnectedCredentialAsync(caller, _provider);
        var (created, id) = await RepoToolsAsync(caller, mapped);
        var before = await CurrentTokenAsync(caller, mapped);
        await ExpireSoonAsync(server, mapped);

        var (agent, _) = await ConnectAgentAsync(GatewayUrl(created), caller.ApiKey);
        await using (agent)
        {
            var result = await agent.CallToolAsync("read_repo", new Dictionary<string, object?> { ["repo"] = "latchkey" });
            Assert.True(result.IsError is null or false, Text(result));
        }
        Assert.Equal(1, _provider.RefreshCalls);
        var after = await CurrentTokenAsync(caller, mapped);
        Assert.NotEqual(before, after);
        Assert.Equal("Bearer " + after, Assert.Single(_upstream.CallsOf("read_repo")).Authorization);
    }

    [Fact]
    public async Task The_upstreams_own_challenge_never_reaches_the_agent()
    {
        var caller = await CallerAsync(server);
        var created = await CreateServerAsync(caller, new { name = "Locked", url = _upstream.Endpoint.AbsoluteUri });
        _upstream.RequireAuthorization = true;
        using var request = new HttpRequestMessage(HttpMethod.Post, GatewayUrl(created))
        {
            Content = new StringContent("""{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search","arguments":{"query":"q"}}}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        var response = await caller.Client.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(response.Headers.Contains("WWW-Authenticate"));
        Assert.DoesNotContain("upstream.example.com", body);
        using var answer = JsonDocument.Parse(body);
        Assert.Equal(7, answer.RootElement.GetProperty("id").GetInt32());
        Assert.True(answer.RootElement.GetProperty("result").GetProperty("isError").GetBoolean());
        Assert.Contains("requires authorization", answer.RootElement.GetProperty("result").GetProperty("content")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task Callers_need_the_owners_api_key_or_a_use_tools_token_issued_for_this_gateway()
    {
        var owner = await CallerAsync(server);
        var stranger = await CallerAsync(server);
        var created = await CreateServerAsync(owner, new { name = "Repo tools", url = _upstream.Endpoint.AbsoluteUri });
        var gateway = GatewayUrl(created);
        var id = created.GetProperty("id").GetString()!;
        var metadataUrl = $"{server.BaseAddress.AbsoluteUri.TrimEnd('/')}/.well-known/oauth-protected-resource/mcp/servers/{id}/mcp";

        // No credential: 401 pointing at the protected resource metadata, which names this gateway and Latchkey.
        using var anonymous = new HttpClient();
        var refused = await anonymous.PostAsync(gateway, JsonContent.Create(new { jsonrpc = "2.0", id = 1, method = "tools/list" }));
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        var challenge = refused.Headers.WwwAuthenticate.ToString();
        Assert.Contains($"resource_metadata=\"{metadataUrl}\"", challenge);
        var metadata = await anonymous.GetFromJsonAsync<JsonElement>(metadataUrl);
        Assert.Equal(gateway.AbsoluteUri, metadata.GetProperty("resource").GetString());
        Assert.Equal(server.BaseAddress.AbsoluteUri, metadata.GetProperty("authorization_servers")[0].GetString());
        Assert.Equal(["USE_TOOLS"], metadata.GetProperty("scopes_supported").EnumerateArray().Select(s => s.GetString()));

        // Another account's API key: the server does not exist for it.
        Assert.Equal(HttpStatusCode.NotFound, (await PostRpcAsync(gateway, "X-API-Key", stranger.ApiKey)).StatusCode);

        // Access tokens: only one issued for this gateway, with USE_TOOLS, for the owner.
        var forGateway = await TokenForAsync(owner.Account, "USE_TOOLS", gateway.AbsoluteUri);
        Assert.Equal(HttpStatusCode.OK, (await PostRpcAsync(gateway, "Authorization", "Bearer " + forGateway)).StatusCode);
        // ... which Latchkey's own API refuses, being for another resource.
        Assert.Equal(HttpStatusCode.Unauthorized, (await OAuthClient.CallMeAsync(server.CreateClient(), forGateway)).StatusCode);

        var noAudience = await TokenForAsync(owner.Account, "USE_TOOLS", resource: null);
        var otherGateway = await TokenForAsync(owner.Account, "USE_TOOLS", gateway.AbsoluteUri.Replace(id, "mcp_0000000000000000"));
        var elsewhere = await TokenForAsync(owner.Account, "USE_TOOLS", "https://tools.example.com/mcp");
        var dotted = await TokenForAsync(owner.Account, "USE_TOOLS", gateway.AbsoluteUri.Replace(id, "mcp_0000000000000000/../" + id));
        foreach (var token in new[] { noAudience, otherGateway, elsewhere, dotted })
        {
            var response = await PostRpcAsync(gateway, "Authorization", "Bearer " + token);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Contains("error=\"invalid_token\"", response.Headers.WwwAuthenticate.ToString());
            Assert.Contains("resource_metadata=", response.Headers.WwwAuthenticate.ToString());
        }
        var withoutScope = await TokenForAsync(owner.Account, "IDENTITY", gateway.AbsoluteUri);
        var insufficient = await PostRpcAsync(gateway, "Authorization", "Bearer " + withoutScope);
        Assert.Equal(HttpStatusCode.Forbidden, insufficient.StatusCode);
        Assert.Contains("error=\"insufficient_scope\"", insufficient.Headers.WwwAuthenticate.ToString());
        var strangersToken = await TokenForAsync(stranger.Account, "USE_TOOLS", gateway.AbsoluteUri);
        Assert.Equal(HttpStatusCode.NotFound, (await PostRpcAsync(gateway, "Authorization", "Bearer " + strangersToken)).StatusCode);
        // Neither the agent's token nor its API key ever went upstream.
        Assert.All(_upstream.Requests, r => Assert.Null(r.Authorization));
    }

    [Fact]
    public async Task A_dpop_bound_token_for_the_gateway_works_only_with_a_proof_by_its_key()
    {
        var owner = await CallerAsync(server);
        var created = await CreateServerAsync(owner, new { name = "Repo tools", url = _upstream.Endpoint.AbsoluteUri });
        var gateway = GatewayUrl(created);
        using var key = new DPoPKey();
        using var other = new DPoPKey();
        var app = await OAuthClient.RegisterAppAsync(owner.Account, scopes: ["USE_TOOLS"], confidential: false);
        var (verifier, challenge) = OAuthClient.NewPkce();
        var outcome = await OAuthClient.AuthorizeAsync(owner.Account.Session, OAuthClient.AuthorizeUrl(app, "USE_TOOLS", challenge,
            extra: new Dictionary<string, string?> { ["resource"] = gateway.AbsoluteUri }));
        var tokens = await DPoPTokenRequests.RedeemCodeWithDPoPAsync(server, app, outcome.Query["code"], verifier, key, gateway.AbsoluteUri);
        var token = tokens.AccessToken!;

        Assert.Equal(HttpStatusCode.OK, (await PostRpcAsync(gateway, "Authorization", "DPoP " + token, key.Proof("POST", gateway.AbsoluteUri, token))).StatusCode);
        var asBearer = await PostRpcAsync(gateway, "Authorization", "Bearer " + token);
        Assert.Equal(HttpStatusCode.Unauthorized, asBearer.StatusCode);
        Assert.Contains(asBearer.Headers.WwwAuthenticate, h => h.Scheme == "DPoP" && h.Parameter!.Contains("resource_metadata="));
        var otherKey = await PostRpcAsync(gateway, "Authorization", "DPoP " + token, other.Proof("POST", gateway.AbsoluteUri, token));
        Assert.Equal(HttpStatusCode.Unauthorized, otherKey.StatusCode);
        Assert.Contains(otherKey.Headers.WwwAuthenticate, h => h.Scheme == "DPoP" && h.Parameter!.Contains("error=\"invalid_dpop_proof\""));
        // Neither the token nor its proof goes upstream.
        Assert.NotEmpty(_upstream.Requests);
        Assert.All(_upstream.Requests, r => Assert.Null(r.Authorization));
        Assert.All(_upstream.Requests, r => Assert.DoesNotContain("DPoP", r.HeaderNames ?? [], StringComparer.OrdinalIgnoreCase));
    }

    private static async Task<HttpResponseMessage> PostRpcAsync(Uri gateway, string header, string value, string? proof = null)
    {
        using var client = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, gateway)
        {
            Content = JsonContent.Create(new { jsonrpc = "2.0", id = 1, method = "initialize", @params = new { protocolVersion = "2025-11-25", capabilities = new { }, clientInfo = new { name = "t", version = "1" } } }),
        };
        request.Headers.TryAddWithoutValidation(header, value);
        if (proof is not null)
        {
            request.Headers.TryAddWithoutValidation("DPoP", proof);
        }
        request.Headers.Accept.ParseAdd("application/json, text/event-stream");
        return await client.SendAsync(request);
    }

    /// <summary>An access token the user grants a new public app for <paramref name="scope"/> and, if given, the resource (RFC 8707).</summary>
    private async Task<string> TokenForAsync(TestAccount user, string scope, string? resource)
    {
        var app = await OAuthClient.RegisterAppAsync(user, scopes: [scope]);
        var (verifier, challenge) = OAuthClient.NewPkce();
        var outcome = await OAuthClient.AuthorizeAsync(user.Session, OAuthClient.AuthorizeUrl(app, scope, challenge,
            extra: new Dictionary<string, string?> { ["resource"] = resource }));
        Assert.True(outcome.Query.ContainsKey("code"), $"{outcome.Response.StatusCode} {outcome.Redirect}");
        var tokens = await OAuthClient.RedeemCodeAsync(server.CreateClient(), app, outcome.Query["code"], verifier);
        return tokens.GetProperty("access_token").GetString()!;
    }

    [Fact]
    public async Task Unreadable_bodies_redirects_and_stray_headers_do_not_get_through()
    {
        var caller = await CallerAsync(server);
        var credentialId = await ConnectedCredentialAsync(caller, _provider);
        var created = await CreateServerAsync(caller, new { name = "Strict", url = _upstream.Endpoint.AbsoluteUri, default_credential_id = credentialId });
        var gateway = GatewayUrl(created);

        async Task<HttpResponseMessage> PostAsync(string body, params (string Name, string Value)[] headers)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, gateway) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            request.Headers.TryAddWithoutValidation("Accept", "application/json, text/event-stream");
            foreach (var (name, value) in headers)
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
            return await caller.Client.SendAsync(request);
        }

        // What the gateway cannot read, it cannot route to a credential or audit: refused before the upstream.
        foreach (var body in new[] { "not json", """{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"read_repo"}}""" })
        {
            var refused = await PostAsync(body);
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Equal(-32700, JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("code").GetInt32());
        }
        Assert.Empty(_upstream.Requests);

        // Client-address, forwarding and cookie headers stay at the gateway; the protocol's own pass.
        var initialized = await PostAsync("""{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}""",
            ("X-Forwarded-For", "10.0.0.1"), ("X-Real-IP", "10.0.0.1"), ("Forwarded", "for=10.0.0.1"), ("Via", "1.1 proxy"), ("Cookie", "a=b"), ("MCP-Protocol-Version", "2025-11-25"));
        Assert.Equal(HttpStatusCode.OK, initialized.StatusCode);
        var seen = Assert.Single(_upstream.Requests).HeaderNames!;
        Assert.DoesNotContain(seen, h => h is "X-Forwarded-For" or "X-Real-IP" or "Forwarded" or "Via" or "Cookie" or "X-API-Key");
        Assert.Contains(seen, h => string.Equals(h, "MCP-Protocol-Version", StringComparison.OrdinalIgnoreCase));

        // A redirect from the upstream is neither followed nor handed to the agent (its key would follow it).
        _upstream.RedirectTo = "https://elsewhere.example.com/steal";
        // The agent gets a JSON-RPC error it can read, never the redirect.
        var redirected = await PostAsync("""{"jsonrpc":"2.0","id":2,"method":"tools/list"}""");
        Assert.Equal(HttpStatusCode.OK, redirected.StatusCode);
        Assert.Null(redirected.Headers.Location);
        var answer = await redirected.Content.ReadAsStringAsync();
        Assert.DoesNotContain("elsewhere.example.com", answer);
        Assert.Contains("redirect", JsonDocument.Parse(answer).RootElement.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task Concurrent_changes_to_one_server_answer_cleanly_and_leave_no_write_waiting()
    {
        var caller = await CallerAsync(server);
        var credentialId = await ConnectedCredentialAsync(caller, _provider);
        var created = await CreateServerAsync(caller, new { name = "Raced", url = _upstream.Endpoint.AbsoluteUri });
        var id = created.GetProperty("id").GetString()!;

        var puts = Enumerable.Range(0, 6).Select(_ => caller.Client.PutAsJsonAsync($"/mcp/servers/{id}/tools/read_repo/credential", new { credential_id = credentialId }));
        var deletes = Enumerable.Range(0, 6).Select(_ => caller.Client.DeleteAsync($"/mcp/servers/{id}"));
        var answers = await Task.WhenAll(puts.Concat(deletes));
        foreach (var answer in answers)
        {
            Assert.True((int)answer.StatusCode < 500, $"{(int)answer.StatusCode} {await answer.Content.ReadAsStringAsync()}");
        }
        await SendAsync(caller, HttpMethod.Get, $"/mcp/servers/{id}", null, HttpStatusCode.NotFound);

        // A save that fails (here a concurrency conflict) gives the SQLite write queue back.
        if (server.Services.GetService<Latchkey.Storage.SqliteWriteGate>() is { } gate)
        {
            var again = await CreateServerAsync(caller, new { name = "Again", url = _upstream.Endpoint.AbsoluteUri });
            var againId = again.GetProperty("id").GetString()!;
            using var first = server.Services.CreateScope();
            using var second = server.Services.CreateScope();
            var db1 = first.ServiceProvider.GetRequiredService<Latchkey.Storage.LatchkeyDbContext>();
            var db2 = second.ServiceProvider.GetRequiredService<Latchkey.Storage.LatchkeyDbContext>();
            db1.McpServers.Remove(await db1.McpServers.SingleAsync(s => s.Id == againId));
            db2.McpServers.Remove(await db2.McpServers.SingleAsync(s => s.Id == againId));
            await db1.SaveChangesAsync();
            await Assert.ThrowsAsync<DbUpdateConcurrencyException>(() => db2.SaveChangesAsync());
            // The server's own background writers (audit rows of the calls above) may hold the
            // queue for a moment; what matters is that it comes back, not that it is free this instant.
            await Eventually.TrueAsync(() => gate.Available == 1, TimeSpan.FromSeconds(10), "the SQLite write queue is free again");
        }
    }

    [Fact]
    public async Task An_audit_row_that_cannot_be_written_is_dropped_and_does_not_hold_back_the_others()
    {
        var audit = server.Services.GetRequiredService<ToolCallAudit>();
        var marker = "mcp_" + Guid.NewGuid().ToString("N")[..16];
        audit.Record(new McpToolCall { AccountId = null!, ServerId = marker, ToolName = "poison", Outcome = "ok" });
        audit.Record(new McpToolCall { AccountId = "someone", ServerId = marker, ToolName = "good", Outcome = "ok" });

        var written = false;
        for (var attempt = 0; attempt < 40 && !written; attempt++)
        {
            try
            {
                await audit.FlushAsync();
            }
            catch (Exception exception) when (exception is System.Data.Common.DbException or Latchkey.Storage.AuditRowsDroppedException)
            {
            }
            written = await server.WithDbAsync(db => db.McpToolCalls.AnyAsync(c => c.ServerId == marker && c.ToolName == "good"));
            await Task.Delay(50);
        }
        Assert.True(written);
        // Nothing is left to retry: the next flush writes nothing and fails nothing.
        await audit.FlushAsync();
        Assert.Equal(["good"], await server.WithDbAsync(db => db.McpToolCalls.Where(c => c.ServerId == marker).Select(c => c.ToolName).ToListAsync()));
    }

    [Fact]
    public async Task A_flush_that_comes_while_a_batch_is_being_written_returns_after_that_batch_is_in_the_database()
    {
        var audit = server.Services.GetRequiredService<ToolCallAudit>();
        var marker = "mcp_" + Guid.NewGuid().ToString("N")[..16];
        for (var index = 0; index < 500; index++)
        {
            audit.Record(new McpToolCall { AccountId = "someone", ServerId = marker, ToolName = $"tool{index}", Outcome = "ok" });
        }

        // The first flush takes the whole queue before it yields; the second finds it empty and
        // must still wait for the first one's commit (the background writer and a caller race so).
        var underWay = audit.FlushAsync();
        await audit.FlushAsync();

        Assert.Equal(500, await server.WithDbAsync(db => db.McpToolCalls.CountAsync(c => c.ServerId == marker)));
        await underWay;
    }

    [Fact]
    public async Task An_mcp_client_with_only_the_url_discovers_registers_gets_consent_and_calls_tools()
    {
        var owner = await CallerAsync(server);
        var mapped = await ConnectedCredentialAsync(owner, _provider);
        var (created, id) = await RepoToolsAsync(owner, mapped);
        var mappedToken = await CurrentTokenAsync(owner, mapped);

        var consentShown = false;
        var recorder = new RecordingHandler(new SocketsHttpHandler());
        var transport = new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = GatewayUrl(created),
            TransportMode = HttpTransportMode.StreamableHttp,
            OAuth = new ClientOAuthOptions
            {
                RedirectUri = new Uri("http://127.0.0.1:9/callback"),
                DynamicClientRegistration = new DynamicClientRegistrationOptions { ClientName = "Agent under test" },
                // The user, signed in to Latchkey, opens the authorize URL and approves on the consent page.
                AuthorizationCallbackHandler = async (context, cancellationToken) =>
                {
                    var page = await owner.Account.Session.GetAsync(context.AuthorizationUri.PathAndQuery, cancellationToken);
                    var html = await page.Content.ReadAsStringAsync(cancellationToken);
                    // The consent page names the scope and the server the token is limited to.
                    var text = WebUtility.HtmlDecode(html);
                    consentShown = text.Contains("USE_TOOLS", StringComparison.Ordinal) && text.Contains("Only for: your MCP server “Repo tools”", StringComparison.Ordinal);
                    var form = OAuthClient.HiddenInputs(html);
                    form["decision"] = "approve";
                    var outcome = OAuthClient.Outcome(await owner.Account.Session.PostAsync("/auth/authorize", new FormUrlEncodedContent(form), cancellationToken));
                    Assert.True(outcome.Query.ContainsKey("code"), $"{outcome.Response.StatusCode} {outcome.Redirect}");
                    return new AuthorizationResult { Code = outcome.Query["code"], State = outcome.Query.GetValueOrDefault("state"), Iss = outcome.Query.GetValueOrDefault("iss") };
                },
            },
        }, new HttpClient(recorder), ownsHttpClient: true);

        await using (var agent = await McpClient.CreateAsync(transport))
        {
            var result = await agent.CallToolAsync("read_repo", new Dictionary<string, object?> { ["repo"] = "latchkey" });
            Assert.Equal($"read latchkey with credential {TestMcpUpstream.Fingerprint("Bearer " + mappedToken)}", Text(result));
        }
        Assert.True(consentShown);
        Assert.Equal("Bearer " + mappedToken, Assert.Single(_upstream.CallsOf("read_repo")).Authorization);
        Assert.DoesNotContain(mappedToken, recorder.Received());
        // The client registered itself, and its token is for this gateway only.
        var registered = await server.WithDbAsync(db => db.OAuthApplications.CountAsync(a => a.DisplayName == "Agent under test"));
        Assert.Equal(1, registered);
    }

    [Fact]
    public async Task An_mcp_client_identified_by_its_metadata_document_gets_consent_and_calls_tools_without_registering()
    {
        var owner = await CallerAsync(server);
        var mapped = await ConnectedCredentialAsync(owner, _provider);
        var (created, _) = await RepoToolsAsync(owner, mapped);
        await using var site = await ClientMetadataDocumentSite.StartAsync();
        var documentUrl = site.Url("/mcp/client-metadata.json");
        site.Serve("/mcp/client-metadata.json", new
        {
            client_id = documentUrl,
            client_name = "Agent with a metadata document",
            redirect_uris = new[] { "http://127.0.0.1:9/callback" },
            grant_types = new[] { "authorization_code", "refresh_token" },
            response_types = new[] { "code" },
            token_endpoint_auth_method = "none",
        });

        var consentNamedTheSite = false;
        var transport = new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = GatewayUrl(created),
            TransportMode = HttpTransportMode.StreamableHttp,
            OAuth = new ClientOAuthOptions
            {
                RedirectUri = new Uri("http://127.0.0.1:9/callback"),
                // The SDK uses the document when discovery says the server supports it, and registers otherwise.
                ClientMetadataDocumentUri = new Uri(documentUrl),
                DynamicClientRegistration = new DynamicClientRegistrationOptions { ClientName = "Agent that registered" },
                AuthorizationCallbackHandler = async (context, cancellationToken) =>
                {
                    Assert.Equal(documentUrl, QueryHelpers.ParseQuery(context.AuthorizationUri.Query)["client_id"].ToString());
                    var page = await owner.Account.Session.GetAsync(context.AuthorizationUri.PathAndQuery, cancellationToken);
                    var html = await page.Content.ReadAsStringAsync(cancellationToken);
                    consentNamedTheSite = WebUtility.HtmlDecode(html).Contains("<strong class=\"metadata-host\">127.0.0.1</strong>", StringComparison.Ordinal);
                    var form = OAuthClient.HiddenInputs(html);
                    form["decision"] = "approve";
                    var outcome = OAuthClient.Outcome(await owner.Account.Session.PostAsync("/auth/authorize", new FormUrlEncodedContent(form), cancellationToken));
                    Assert.True(outcome.Query.ContainsKey("code"), $"{outcome.Response.StatusCode} {outcome.Redirect}");
                    return new AuthorizationResult { Code = outcome.Query["code"], State = outcome.Query.GetValueOrDefault("state"), Iss = outcome.Query.GetValueOrDefault("iss") };
                },
            },
        }, new HttpClient(), ownsHttpClient: true);

        await using (var agent = await McpClient.CreateAsync(transport))
        {
            var result = await agent.CallToolAsync("read_repo", new Dictionary<string, object?> { ["repo"] = "latchkey" });
            Assert.StartsWith("read latchkey with credential ", Text(result));
        }
        Assert.True(consentNamedTheSite);
        Assert.Equal(1, site.Hits("/mcp/client-metadata.json"));
        Assert.Equal(0, await server.WithDbAsync(db => db.OAuthApplications.CountAsync(a => a.DisplayName == "Agent that registered")));
        Assert.Equal(1, await server.WithDbAsync(db => db.OAuthApplications.CountAsync(a => a.ClientId == documentUrl)));
    }
}

/// <summary>Reports progress on the calling thread, so that the count is complete when the call returns.</summary>
internal sealed class SynchronousProgress(Action<ProgressNotificationValue> report) : IProgress<ProgressNotificationValue>
{
    public void Report(ProgressNotificationValue value) => report(value);
}

/// <summary>Keeps a copy of every response header and body byte a client receives, streams included.</summary>
public sealed class RecordingHandler(HttpMessageHandler inner) : DelegatingHandler(inner)
{
    private readonly MemoryStream _received = new();

    public string Received()
    {
        lock (_received)
        {
            return Encoding.UTF8.GetString(_received.ToArray());
        }
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken);
        Append(string.Join("\n", response.Headers.Concat(response.Content.Headers).Select(h => $"{h.Key}: {string.Join(",", h.Value)}")));
        var original = response.Content;
        var tee = new StreamContent(new TeeStream(await original.ReadAsStreamAsync(cancellationToken), this));
        foreach (var header in original.Headers)
        {
            tee.Headers.TryAddWithoutValidation(header.Key, header.Value);
        }
        response.Content = tee;
        return response;
    }

    private void Append(string text) => Append(Encoding.UTF8.GetBytes(text + "\n"));

    private void Append(ReadOnlySpan<byte> bytes)
    {
        lock (_received)
        {
            _received.Write(bytes);
        }
    }

    private sealed class TeeStream(Stream inner, RecordingHandler recorder) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override int Read(byte[] buffer, int offset, int count)
        {
            var read = inner.Read(buffer, offset, count);
            recorder.Append(buffer.AsSpan(offset, read));
            return read;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await inner.ReadAsync(buffer, cancellationToken);
            recorder.Append(buffer.Span[..read]);
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}

public sealed class McpGatewayTestsOnSqlite(SqliteServer server) : McpGatewayTests(server), IClassFixture<SqliteServer>;

public sealed class McpGatewayTestsOnPostgres(PostgresServer server) : McpGatewayTests(server), IClassFixture<PostgresServer>;

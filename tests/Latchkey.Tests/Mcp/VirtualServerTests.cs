using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using static Latchkey.Tests.Infrastructure.McpAgents;
using static Latchkey.Tests.Infrastructure.TestBroker;

namespace Latchkey.Tests.Mcp;

/// <summary>
/// Virtual servers with the official MCP SDK as the agent: one URL for the tools of two upstreams,
/// each under its prefix, each call going to its own upstream with its own credential and policy,
/// and a member's tools/list_changed reaching the agent.
/// </summary>
public abstract class VirtualServerTests(LatchkeyServerFixture server) : IAsyncLifetime
{
    private TestMcpUpstream _github = null!;
    private TestMcpUpstream _files = null!;
    private TestOAuthProvider _provider = null!;

    public async Task InitializeAsync()
    {
        _github = await TestMcpUpstream.StartAsync();
        _files = await TestMcpUpstream.StartAsync();
        _provider = await TestOAuthProvider.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _github.DisposeAsync();
        await _files.DisposeAsync();
        await _provider.DisposeAsync();
    }

    [Fact]
    public async Task Two_servers_tools_appear_under_their_prefixes_and_each_call_goes_to_its_own_upstream_with_its_credential_and_policy()
    {
        var caller = await CallerAsync(server);
        var credential = await ConnectedCredentialAsync(caller, _provider);
        var github = await ServerAsync(caller, "GitHub", _github);
        var files = await ServerAsync(caller, "Files", _files);
        await SendAsync(caller, HttpMethod.Put, $"/mcp/servers/{github}/tools/read_repo/credential", new { credential_id = credential }, HttpStatusCode.OK);
        await SendAsync(caller, HttpMethod.Put, $"/mcp/servers/{github}/tools/delete_*/policy", new { action = "deny" }, HttpStatusCode.OK);
        var created = await SendAsync(caller, HttpMethod.Post, "/mcp/virtual-servers",
            new { name = "Everything", members = new object[] { new { server_id = github }, new { server_id = files, prefix = "fs" } } }, HttpStatusCode.Created);
        Assert.Equal(["fs", "github"], created.GetProperty("members").EnumerateArray().Select(m => m.GetProperty("prefix").GetString()));

        await using var agent = await ConnectAsync(new Uri(created.GetProperty("gateway_url").GetString()!), caller.ApiKey);
        var names = (await agent.ListToolsAsync()).Select(t => t.Name).ToList();
        Assert.Contains("github__read_repo", names);
        Assert.Contains("fs__read_repo", names);
        Assert.Contains("fs__delete_repo", names);
        Assert.DoesNotContain("github__delete_repo", names);
        Assert.Equal("Everything", agent.ServerInfo!.Name);

        var read = await agent.CallToolAsync("github__read_repo", new Dictionary<string, object?> { ["repo"] = "latchkey" });
        var token = (await PostAsync(caller, $"/mcp/credentials/{credential}/access-token", new { })).GetProperty("access_token").GetString()!;
        Assert.Equal($"read latchkey with credential {TestMcpUpstream.Fingerprint("Bearer " + token)}", Text(read));
        Assert.Equal("searched q with credential none", Text(await agent.CallToolAsync("fs__search", new Dictionary<string, object?> { ["query"] = "q" })));
        Assert.Single(_github.CallsOf("read_repo"));
        Assert.Single(_files.CallsOf("search"));
        Assert.Empty(_github.CallsOf("search"));
        // The member's policy holds: its denied tool is refused; an unknown name says how names are made.
        var denied = await Assert.ThrowsAsync<McpProtocolException>(() => agent.CallToolAsync("github__delete_repo", new Dictionary<string, object?> { ["repo"] = "x" }).AsTask());
        Assert.Contains("policy denies it", denied.Message);
        var unknown = await Assert.ThrowsAsync<McpProtocolException>(() => agent.CallToolAsync("nowhere__search", new Dictionary<string, object?> { ["query"] = "q" }).AsTask());
        Assert.Contains("prefix", unknown.Message);
        Assert.Empty(_github.CallsOf("delete_repo"));
        // Neither upstream ever saw the agent's key or the virtual session.
        Assert.All(_github.Requests.Concat(_files.Requests), r => Assert.Null(r.ApiKeyHeader));
    }

    [Fact]
    public async Task A_members_tool_list_change_reaches_the_agent()
    {
        var caller = await CallerAsync(server);
        var created = await SendAsync(caller, HttpMethod.Post, "/mcp/virtual-servers", new
        {
            name = "Both",
            members = new object[] { new { server_id = await ServerAsync(caller, "GitHub", _github) }, new { server_id = await ServerAsync(caller, "Files", _files), prefix = "fs" } },
        }, HttpStatusCode.Created);
        await using var agent = await ConnectAsync(new Uri(created.GetProperty("gateway_url").GetString()!), caller.ApiKey, "2025-11-25");
        var changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var handler = agent.RegisterNotificationHandler(NotificationMethods.ToolListChangedNotification, (_, _) =>
        {
            changed.TrySetResult();
            return ValueTask.CompletedTask;
        });
        Assert.DoesNotContain(await agent.ListToolsAsync(), t => t.Name == "fs__new_tool");
        // The gateway listens to each member's stream once the agent opened its own.
        await Eventually.TrueAsync(() => _files.Requests.Any(r => r.HttpMethod == "GET"), TimeSpan.FromSeconds(10), "the gateway to listen to the member");

        await agent.CallToolAsync("fs__add_tool", new Dictionary<string, object?> { ["name"] = "new_tool" });

        await changed.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Contains(await agent.ListToolsAsync(), t => t.Name == "fs__new_tool");
    }

    [Fact]
    public async Task Bad_virtual_servers_are_refused_and_another_account_sees_none()
    {
        var caller = await CallerAsync(server);
        var stranger = await CallerAsync(server);
        var mine = await ServerAsync(caller, "GitHub", _github);
        var theirs = await ServerAsync(stranger, "Theirs", _files);

        foreach (var (body, expected, status) in new (object, string, HttpStatusCode)[]
        {
            (new { name = "x", members = Array.Empty<object>() }, "members lists 1 to 20", HttpStatusCode.BadRequest),
            (new { name = "x", members = new object[] { new { server_id = theirs } } }, "You have no MCP server", HttpStatusCode.NotFound),
            (new { name = "x", members = new object[] { new { server_id = mine, prefix = "a__b" } } }, "must be 1 to 40", HttpStatusCode.BadRequest),
            (new { name = "x", members = new object[] { new { server_id = mine, prefix = "p" }, new { server_id = await ServerAsync(caller, "Other", _files), prefix = "p" } } }, "share the prefix", HttpStatusCode.BadRequest),
            (new { members = new object[] { new { server_id = mine } } }, "name is required", HttpStatusCode.BadRequest),
        })
        {
            var refused = await SendAsync(caller, HttpMethod.Post, "/mcp/virtual-servers", body, status);
            Assert.Contains(expected, refused.GetProperty("message").GetString());
        }
        var created = await SendAsync(caller, HttpMethod.Post, "/mcp/virtual-servers", new { name = "Mine", members = new object[] { new { server_id = mine } } }, HttpStatusCode.Created);
        var id = created.GetProperty("id").GetString()!;
        await SendAsync(stranger, HttpMethod.Get, $"/mcp/virtual-servers/{id}", null, HttpStatusCode.NotFound);
        Assert.Equal(HttpStatusCode.NotFound, (await PostRpcAsync(new Uri(created.GetProperty("gateway_url").GetString()!), stranger.ApiKey)).StatusCode);
        var anonymous = await new HttpClient().PostAsync(created.GetProperty("gateway_url").GetString(), new StringContent("{}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Contains($"/.well-known/oauth-protected-resource/mcp/virtual-servers/{id}/mcp", anonymous.Headers.WwwAuthenticate.ToString());

        await SendAsync(caller, HttpMethod.Delete, $"/mcp/virtual-servers/{id}", null, HttpStatusCode.NoContent);
        Assert.Equal(HttpStatusCode.NotFound, (await PostRpcAsync(new Uri(created.GetProperty("gateway_url").GetString()!), caller.ApiKey)).StatusCode);
    }

    private static async Task<string> ServerAsync(BrokerCaller caller, string name, TestMcpUpstream upstream) =>
        (await SendAsync(caller, HttpMethod.Post, "/mcp/servers", new { name, url = upstream.Endpoint.AbsoluteUri }, HttpStatusCode.Created)).GetProperty("id").GetString()!;


    private static async Task<HttpResponseMessage> PostRpcAsync(Uri gateway, string apiKey)
    {
        using var client = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, gateway)
        {
            Content = new StringContent("""{"jsonrpc":"2.0","id":1,"method":"ping"}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.TryAddWithoutValidation("X-API-Key", apiKey);
        return await client.SendAsync(request);
    }

}

public sealed class VirtualServerTestsOnSqlite(SqliteServer server) : VirtualServerTests(server), IClassFixture<SqliteServer>;

public sealed class VirtualServerTestsOnPostgres(PostgresServer server) : VirtualServerTests(server), IClassFixture<PostgresServer>;

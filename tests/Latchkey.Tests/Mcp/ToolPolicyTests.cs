using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using static Latchkey.Tests.Infrastructure.McpAgents;
using static Latchkey.Tests.Infrastructure.TestBroker;

namespace Latchkey.Tests.Mcp;

/// <summary>Gateway settings that make holds and timeouts short enough to test.</summary>
internal static class QuickGateway
{
    public static void Configure(WebApplicationBuilder builder) =>
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Mcp:ApprovalWaitSeconds"] = "3",
            ["Mcp:ApprovalPollMilliseconds"] = "50",
            ["Mcp:UpstreamTimeoutSeconds"] = "2",
        });
}

public sealed class QuickGatewayOnSqlite : SqliteServer
{
    protected override void ConfigureServer(WebApplicationBuilder builder) => QuickGateway.Configure(builder);
}

/// <summary>Two nodes on one PostgreSQL: a call held on one is decided on the other.</summary>
public sealed class QuickGatewayOnPostgres : PostgresServer
{
    public Uri OtherNode { get; private set; } = null!;
    private WebApplication _other = null!;

    protected override void ConfigureServer(WebApplicationBuilder builder) => QuickGateway.Configure(builder);

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        (_other, OtherNode) = await StartAnotherNodeAsync();
    }

    public override async Task DisposeAsync()
    {
        await _other.StopAsync();
        await _other.DisposeAsync();
        await base.DisposeAsync();
    }
}

/// <summary>
/// Per-tool policy and human approval in the gateway, with the official MCP SDK as the agent:
/// denied tools vanish from tools/list and are refused, argument rules name what they refuse,
/// a tool that needs a scope brings the step-up challenge, a held call goes through once the
/// owner approves (on the page's API, from any node) and never before, and upstream failures
/// reach the model as readable errors.
/// </summary>
public abstract class ToolPolicyTests(LatchkeyServerFixture server) : IAsyncLifetime
{
    private TestMcpUpstream _upstream = null!;

    public async Task InitializeAsync() => _upstream = await TestMcpUpstream.StartAsync();

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    [Fact]
    public async Task Denied_tools_are_hidden_and_refused_and_argument_rules_name_what_they_refuse()
    {
        var caller = await CallerAsync(server);
        var (id, gateway) = await ServerAsync(caller);
        await PolicyAsync(caller, id, "delete_*", new { action = "deny" });
        await PolicyAsync(caller, id, "read_repo", new { action = "allow", argument_rules = new[] { new { argument = "repo", pattern = "latchkey/[a-z-]+" } } });

        await using var agent = await ConnectAsync(gateway, caller.ApiKey);
        var tools = await agent.ListToolsAsync();
        Assert.DoesNotContain(tools, t => t.Name == "delete_repo");
        Assert.Contains(tools, t => t.Name == "search");

        var denied = await Assert.ThrowsAsync<McpProtocolException>(() => agent.CallToolAsync("delete_repo", new Dictionary<string, object?> { ["repo"] = "latchkey/core" }).AsTask());
        Assert.Equal(McpErrorCode.InvalidParams, denied.ErrorCode);
        Assert.Contains("policy denies it", denied.Message);
        var outside = await Assert.ThrowsAsync<McpProtocolException>(() => agent.CallToolAsync("read_repo", new Dictionary<string, object?> { ["repo"] = "other/secret" }).AsTask());
        Assert.Contains("the argument 'repo' must match latchkey/[a-z-]+", outside.Message);
        Assert.Equal("read latchkey/core with credential none", Text(await agent.CallToolAsync("read_repo", new Dictionary<string, object?> { ["repo"] = "latchkey/core" })));
        // Inside a batch there is no one id to answer: the request is refused whole.
        var batched = await PostRpcAsync(gateway, caller.ApiKey, """[{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"delete_repo","arguments":{"repo":"x"}}}]""");
        Assert.Equal(HttpStatusCode.Forbidden, batched.StatusCode);
        Assert.Empty(_upstream.CallsOf("delete_repo"));
        Assert.Single(_upstream.CallsOf("read_repo"));

        // The server's default applies to tools no policy names.
        await SendAsync(caller, HttpMethod.Patch, $"/mcp/servers/{id}", new { default_tool_policy = "deny" }, HttpStatusCode.OK);
        await using var later = await ConnectAsync(gateway, caller.ApiKey);
        Assert.Equal(["read_repo"], (await later.ListToolsAsync()).Select(t => t.Name));
        await server.Services.GetRequiredService<Latchkey.Features.Mcp.ToolCallAudit>().FlushAsync();
        var audited = await server.WithDbAsync(db => db.McpToolCalls.AsNoTracking().Where(c => c.ServerId == id).Select(c => c.Outcome).ToListAsync());
        Assert.Contains("denied_by_policy", audited);
        Assert.Contains("refused_by_argument_rule", audited);
    }

    [Fact]
    public async Task A_tool_that_needs_a_scope_is_listed_as_such_and_a_call_without_it_gets_the_step_up_challenge()
    {
        var caller = await CallerAsync(server);
        var (id, gateway) = await ServerAsync(caller);
        await PolicyAsync(caller, id, "search", new { action = "allow", required_scope = "READ_GRAPH" });
        // The agent's key lacks READ_GRAPH.
        var (key, _) = await TestAccounts.CreateKeyAsync(caller.Account, "USE_TOOLS");

        await using var agent = await ConnectAsync(gateway, key);
        var search = (await agent.ListToolsAsync()).Single(t => t.Name == "search");
        Assert.Equal("READ_GRAPH", search.ProtocolTool.Meta!["latchkey/required_scope"]!.GetValue<string>());
        Assert.Contains("Needs the scope READ_GRAPH", search.Description);

        var refused = await PostRpcAsync(gateway, key, """{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search","arguments":{"query":"q"}}}""");
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        var challenge = refused.Headers.WwwAuthenticate.Single(h => h.Scheme == "Bearer").ToString();
        Assert.Contains("error=\"insufficient_scope\"", challenge);
        Assert.Contains("scope=\"READ_GRAPH\"", challenge);
        Assert.Empty(_upstream.CallsOf("search"));
        // A key with the scope: the call goes through.
        var (withScope, _) = await TestAccounts.CreateKeyAsync(caller.Account, "USE_TOOLS", "READ_GRAPH");
        Assert.NotEqual(HttpStatusCode.Forbidden, (await PostRpcAsync(gateway, withScope, """{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"search","arguments":{"query":"q"}}}""")).StatusCode);
        Assert.Single(_upstream.CallsOf("search"));
    }

    [Fact]
    public async Task A_held_call_waits_for_the_owner_and_goes_through_once_approved()
    {
        var caller = await CallerAsync(server);
        var (id, gateway) = await ServerAsync(caller);
        await PolicyAsync(caller, id, "delete_repo", new { action = "require_approval" });
        await using var agent = await ConnectAsync(gateway, caller.ApiKey);

        var call = agent.CallToolAsync("delete_repo", new Dictionary<string, object?> { ["repo"] = "latchkey/old" }).AsTask();
        var pending = await WaitForPendingAsync(caller);
        Assert.Equal("delete_repo", pending.GetProperty("tool").GetString());
        Assert.Equal("latchkey/old", pending.GetProperty("arguments").GetProperty("repo").GetString());
        Assert.False(call.IsCompleted);
        Assert.Empty(_upstream.CallsOf("delete_repo"));

        await DecideAsync(caller.Client, pending.GetProperty("id").GetString()!, new { decision = "approve", grant = "once" }, HttpStatusCode.OK);

        Assert.Equal("deleted latchkey/old with credential none", Text(await call));
        Assert.Single(_upstream.CallsOf("delete_repo"));
        // Approved once: the next call is held again.
        var again = await agent.CallToolAsync("delete_repo", new Dictionary<string, object?> { ["repo"] = "latchkey/old" });
        Assert.True(again.IsError);
        Assert.Contains("waits for its owner's approval", Text(again));
        Assert.Single(_upstream.CallsOf("delete_repo"));
    }

    [Fact]
    public async Task A_call_not_decided_in_time_points_to_the_approval_and_its_retry_goes_through_after_approval()
    {
        var caller = await CallerAsync(server);
        var (id, gateway) = await ServerAsync(caller);
        await PolicyAsync(caller, id, "delete_*", new { action = "require_approval" });
        await using var agent = await ConnectAsync(gateway, caller.ApiKey);

        var waited = await agent.CallToolAsync("delete_repo", new Dictionary<string, object?> { ["repo"] = "latchkey/tmp" });

        Assert.True(waited.IsError);
        var pending = await WaitForPendingAsync(caller);
        var approvalId = pending.GetProperty("id").GetString()!;
        Assert.Contains($"/profile/approvals#{approvalId}", Text(waited));
        Assert.Empty(_upstream.CallsOf("delete_repo"));
        await DecideAsync(caller.Client, approvalId, new { decision = "approve" }, HttpStatusCode.OK);
        // Decided once: a second decision is refused.
        await DecideAsync(caller.Client, approvalId, new { decision = "deny" }, HttpStatusCode.Conflict);

        var retried = await agent.CallToolAsync("delete_repo", new Dictionary<string, object?> { ["repo"] = "latchkey/tmp" });
        Assert.True(retried.IsError != true, Text(retried));
        Assert.Single(_upstream.CallsOf("delete_repo"));
        // Other arguments are another call: held.
        Assert.True((await agent.CallToolAsync("delete_repo", new Dictionary<string, object?> { ["repo"] = "latchkey/core" })).IsError);
        Assert.Single(_upstream.CallsOf("delete_repo"));
    }

    [Fact]
    public async Task A_denied_call_is_refused_and_an_approval_for_the_session_lets_the_sessions_calls_through()
    {
        var caller = await CallerAsync(server);
        var (id, gateway) = await ServerAsync(caller);
        await PolicyAsync(caller, id, "delete_repo", new { action = "require_approval" });
        // A protocol revision with sessions (Mcp-Session-Id).
        await using var agent = await ConnectAsync(gateway, caller.ApiKey, "2025-11-25");

        var denied = agent.CallToolAsync("delete_repo", new Dictionary<string, object?> { ["repo"] = "a/b" }).AsTask();
        await DecideAsync(caller.Client, (await WaitForPendingAsync(caller)).GetProperty("id").GetString()!, new { decision = "deny" }, HttpStatusCode.OK);
        var refused = await denied;
        Assert.True(refused.IsError);
        Assert.Contains("denied", Text(refused));

        var held = agent.CallToolAsync("delete_repo", new Dictionary<string, object?> { ["repo"] = "a/c" }).AsTask();
        await DecideAsync(caller.Client, (await WaitForPendingAsync(caller)).GetProperty("id").GetString()!, new { decision = "approve", grant = "session" }, HttpStatusCode.OK);
        Assert.NotEqual(true, (await held).IsError);
        Assert.NotEqual(true, (await agent.CallToolAsync("delete_repo", new Dictionary<string, object?> { ["repo"] = "a/d" })).IsError);
        Assert.Equal(2, _upstream.CallsOf("delete_repo").Count);
        // Another session of the same agent is asked again.
        await using var other = await ConnectAsync(gateway, caller.ApiKey, "2025-11-25");
        Assert.True((await other.CallToolAsync("delete_repo", new Dictionary<string, object?> { ["repo"] = "a/e" })).IsError);

        await server.Services.GetRequiredService<Latchkey.Features.SecurityEvents.SecurityEventLog>().FlushAsync();
        var logged = await server.WithDbAsync(db => db.SecurityEvents.AsNoTracking().Select(e => e.Type).ToListAsync());
        Assert.Contains("tool_call_denied", logged);
        Assert.Contains("tool_call_approved", logged);
    }

    [Fact]
    public async Task A_waiting_call_is_announced_to_the_servers_webhook_without_its_arguments()
    {
        var received = new System.Collections.Concurrent.ConcurrentQueue<JsonElement>();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        await using var hook = builder.Build();
        hook.MapPost("/hook", async (HttpRequest request) =>
        {
            received.Enqueue((await JsonDocument.ParseAsync(request.Body)).RootElement.Clone());
            return Results.NoContent();
        });
        await hook.StartAsync();
        var caller = await CallerAsync(server);
        var (id, gateway) = await ServerAsync(caller);
        await PolicyAsync(caller, id, "delete_repo", new { action = "require_approval" });
        await SendAsync(caller, HttpMethod.Patch, $"/mcp/servers/{id}", new { approval_webhook_url = hook.Urls.First() + "/hook" }, HttpStatusCode.OK);
        // The account's signed webhooks hear of it too.
        await using var receiver = await TestWebhookReceiver.StartAsync();
        var secret = (await SendAsync(caller, HttpMethod.Post, "/mcp/webhooks", new { url = receiver.Url.AbsoluteUri, events = new[] { "approval.requested" } }, HttpStatusCode.Created))
            .GetProperty("secret").GetString()!;
        await using var agent = await ConnectAsync(gateway, caller.ApiKey);

        _ = agent.CallToolAsync("delete_repo", new Dictionary<string, object?> { ["repo"] = "secret/project" }).AsTask();
        var approvalId = (await WaitForPendingAsync(caller)).GetProperty("id").GetString()!;
        await Eventually.TrueAsync(() => !received.IsEmpty, TimeSpan.FromSeconds(10), "the webhook to be called");

        var announced = Assert.Single(received);
        Assert.Equal("tool_call_approval_requested", announced.GetProperty("type").GetString());
        Assert.Equal(approvalId, announced.GetProperty("approval_id").GetString());
        Assert.Equal("delete_repo", announced.GetProperty("tool").GetString());
        Assert.EndsWith($"/profile/approvals#{approvalId}", announced.GetProperty("approval_url").GetString());
        Assert.DoesNotContain("secret/project", announced.GetRawText());

        await Eventually.TrueAsync(() => !receiver.Received.IsEmpty, TimeSpan.FromSeconds(10), "the account's webhook to hear of it");
        var signed = Assert.Single(receiver.Received);
        new StandardWebhooks.StandardWebhook(secret).Verify(signed.Body, signed.Headers);
        var data = JsonDocument.Parse(signed.Body).RootElement.GetProperty("data");
        Assert.Equal(approvalId, data.GetProperty("approval_id").GetString());
        Assert.Equal("delete_repo", data.GetProperty("tool").GetString());
        Assert.DoesNotContain("secret/project", signed.Body);
    }

    [Fact]
    public async Task The_clean_up_removes_old_approvals_that_let_nothing_through_and_keeps_the_rest()
    {
        var caller = await CallerAsync(server);
        var (id, _) = await ServerAsync(caller);
        var ownerId = await server.WithDbAsync(db => db.McpServers.Where(s => s.Id == id).Select(s => s.OwnerId).SingleAsync());
        var now = DateTimeOffset.UtcNow;
        Latchkey.Features.Mcp.Approvals.ToolCallApproval Approval(string suffix, int daysAgo, DateTimeOffset? grantExpires) => new()
        {
            Id = "apr_cleanup" + suffix + Guid.NewGuid().ToString("N")[..8], OwnerId = ownerId, ServerId = id, ServerName = "Repo tools", ToolName = "delete_repo",
            ArgumentsHash = "0", Caller = "key_x", Status = grantExpires is null ? "denied" : "approved", Grant = grantExpires is null ? null : "hour",
            CreatedAt = now.AddDays(-daysAgo), ExpiresAt = now.AddDays(-daysAgo).AddMinutes(15), GrantExpiresAt = grantExpires,
        };
        var old = Approval("old", 40, null);
        var recent = Approval("new", 2, null);
        var stillGranting = Approval("grant", 40, now.AddHours(1));
        await server.WithDbAsync(async db =>
        {
            db.McpApprovals.AddRange(old, recent, stillGranting);
            await db.SaveChangesAsync();
            return 0;
        });

        var run = await server.RunCliAsync(["cleanup"]);

        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Contains("tool-call approvals", run.Output);
        var left = await server.WithDbAsync(db => db.McpApprovals.AsNoTracking().Where(a => a.ServerId == id).Select(a => a.Id).ToListAsync());
        Assert.DoesNotContain(old.Id, left);
        Assert.Contains(recent.Id, left);
        Assert.Contains(stillGranting.Id, left);
    }

    [Fact]
    public async Task Another_account_cannot_see_or_decide_an_approval()
    {
        var caller = await CallerAsync(server);
        var stranger = await CallerAsync(server);
        var (id, gateway) = await ServerAsync(caller);
        await PolicyAsync(caller, id, "delete_repo", new { action = "require_approval" });
        await using var agent = await ConnectAsync(gateway, caller.ApiKey);
        _ = await agent.CallToolAsync("delete_repo", new Dictionary<string, object?> { ["repo"] = "x/y" });
        var approvalId = (await WaitForPendingAsync(caller)).GetProperty("id").GetString()!;

        Assert.Empty((await stranger.Client.GetFromJsonAsync<JsonElement>("/mcp/approvals")).GetProperty("approvals").EnumerateArray());
        await DecideAsync(stranger.Client, approvalId, new { decision = "approve" }, HttpStatusCode.NotFound);
        await DecideAsync(caller.Client, approvalId, new { decision = "maybe" }, HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Bad_policies_are_refused_with_the_field_named()
    {
        var caller = await CallerAsync(server);
        var (id, _) = await ServerAsync(caller);
        foreach (var (tool, body, expected) in new (string, object, string)[]
        {
            ("read_repo", new { action = "maybe" }, "action must be one of"),
            ("read repo", new { action = "allow" }, "neither a tool name nor a pattern"),
            ("read_repo", new { action = "allow", required_scope = "NOPE" }, "required_scope"),
            ("read_repo", new { action = "allow", argument_rules = new[] { new { argument = "repo", pattern = "(" } } }, "not a regular expression"),
        })
        {
            var refused = await SendAsync(caller, HttpMethod.Put, $"/mcp/servers/{id}/tools/{Uri.EscapeDataString(tool)}/policy", body, HttpStatusCode.BadRequest);
            Assert.Contains(expected, refused.GetProperty("message").GetString());
        }
        await SendAsync(caller, HttpMethod.Patch, $"/mcp/servers/{id}", new { default_tool_policy = "sometimes" }, HttpStatusCode.BadRequest);
        var listed = await SendAsync(caller, HttpMethod.Get, $"/mcp/servers/{id}/policies", null, HttpStatusCode.OK);
        Assert.Equal("allow", listed.GetProperty("default_policy").GetString());
        Assert.Empty(listed.GetProperty("policies").EnumerateArray());
    }

    [Fact]
    public async Task The_cli_sets_lists_and_removes_policies_and_the_gateway_follows_them()
    {
        var caller = await CallerAsync(server);
        var (id, gateway) = await ServerAsync(caller);

        var set = await server.RunCliAsync(["mcp", "policy", "set", "--user", caller.AccountEmail, "--server", id, "--tool", "delete_*", "--action", "deny"]);
        var rule = await server.RunCliAsync(["mcp", "policy", "set", "--user", caller.AccountEmail, "--server", id, "--tool", "read_repo",
            "--action", "allow", "--rule", "repo=latchkey/.*"]);
        var bad = await server.RunCliAsync(["mcp", "policy", "set", "--user", caller.AccountEmail, "--server", id, "--tool", "x", "--action", "perhaps"]);
        var list = await server.RunCliAsync(["mcp", "policy", "list", "--user", caller.AccountEmail, "--server", id]);

        Assert.True(set.ExitCode == 0, set.Error);
        Assert.Contains("delete_* is now deny", set.Output);
        Assert.True(rule.ExitCode == 0, rule.Error);
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("action must be one of", bad.Error);
        Assert.Contains("delete_*", list.Output);
        Assert.Contains("repo ~ latchkey/.*", list.Output);
        await using (var agent = await ConnectAsync(gateway, caller.ApiKey))
        {
            Assert.DoesNotContain(await agent.ListToolsAsync(), t => t.Name == "delete_repo");
        }

        var removed = await server.RunCliAsync(["mcp", "policy", "remove", "--user", caller.AccountEmail, "--server", id, "--tool", "delete_*"]);
        Assert.True(removed.ExitCode == 0, removed.Error);
        // The CLI is another process: its change reaches the running server's cache through the change feed.
        await Eventually.TrueAsync(async () =>
        {
            await using var agent = await ConnectAsync(gateway, caller.ApiKey);
            return (await agent.ListToolsAsync()).Any(t => t.Name == "delete_repo");
        }, TimeSpan.FromSeconds(10), "the removed policy to reach the gateway");
    }

    [Fact]
    public async Task Upstream_failures_reach_the_model_as_readable_errors_and_the_audit_says_which()
    {
        var caller = await CallerAsync(server);
        var (id, gateway) = await ServerAsync(caller);
        await using var agent = await ConnectAsync(gateway, caller.ApiKey);

        var slow = await agent.CallToolAsync("slow", new Dictionary<string, object?> { ["seconds"] = 10 });
        Assert.True(slow.IsError);
        Assert.Contains("did not answer within 2 s", Text(slow));
        var broken = await agent.CallToolAsync("break_off", new Dictionary<string, object?>());
        Assert.True(broken.IsError);
        Assert.Contains("broke off", Text(broken));

        var unreachable = (await SendAsync(caller, HttpMethod.Post, "/mcp/servers", new { name = "Gone", url = "http://127.0.0.1:9/mcp" }, HttpStatusCode.Created));
        var refused = await PostRpcAsync(new Uri(unreachable.GetProperty("gateway_url").GetString()!), caller.ApiKey,
            """{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"search","arguments":{"query":"q"}}}""");
        Assert.Equal(HttpStatusCode.OK, refused.StatusCode);
        var result = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("result");
        Assert.True(result.GetProperty("isError").GetBoolean());
        Assert.Contains("could not be reached", result.GetProperty("content")[0].GetProperty("text").GetString());

        await server.Services.GetRequiredService<Latchkey.Features.Mcp.ToolCallAudit>().FlushAsync();
        var outcomes = await server.WithDbAsync(db => db.McpToolCalls.AsNoTracking().Select(c => c.Outcome).ToListAsync());
        Assert.Contains("upstream_timeout", outcomes);
        Assert.Contains("upstream_broke_off", outcomes);
        Assert.Contains("upstream_unreachable", outcomes);
    }

    [Fact]
    public async Task The_agents_trace_context_reaches_the_upstream_from_the_header_or_from_meta()
    {
        var caller = await CallerAsync(server);
        var (_, gateway) = await ServerAsync(caller);
        var fromHeader = ActivityTraceId.CreateRandom().ToHexString();
        var fromMeta = ActivityTraceId.CreateRandom().ToHexString();

        await PostRpcAsync(gateway, caller.ApiKey, """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"query":"h"}}}""",
            ("traceparent", $"00-{fromHeader}-0123456789abcdef-01"));
        await PostRpcAsync(gateway, caller.ApiKey,
            """{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"search","arguments":{"query":"m"},"_meta":{"traceparent":"00-""" + fromMeta + """-0123456789abcdef-01"}}}""");

        var traces = _upstream.CallsOf("search").Select(r => r.TraceParent).ToList();
        Assert.Contains(traces, t => t is not null && t.Contains(fromHeader));
        Assert.Contains(traces, t => t is not null && t.Contains(fromMeta));
    }

    private async Task<(string Id, Uri Gateway)> ServerAsync(BrokerCaller caller)
    {
        var created = await SendAsync(caller, HttpMethod.Post, "/mcp/servers", new { name = "Repo tools", url = _upstream.Endpoint.AbsoluteUri }, HttpStatusCode.Created);
        return (created.GetProperty("id").GetString()!, new Uri(created.GetProperty("gateway_url").GetString()!));
    }

    private static Task<JsonElement> PolicyAsync(BrokerCaller caller, string id, string tool, object body) =>
        SendAsync(caller, HttpMethod.Put, $"/mcp/servers/{id}/tools/{tool}/policy", body, HttpStatusCode.OK);

    private static async Task DecideAsync(HttpClient client, string approvalId, object decision, HttpStatusCode expected)
    {
        var response = await client.PostAsJsonAsync($"/mcp/approvals/{approvalId}", decision);
        Assert.True(response.StatusCode == expected, $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }

    /// <summary>The newest pending approval of the caller's account, once the held call has made it.</summary>
    protected static async Task<JsonElement> WaitForPendingAsync(BrokerCaller caller, HttpClient? client = null)
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            var list = await (client ?? caller.Client).GetFromJsonAsync<JsonElement>("/mcp/approvals?status=pending");
            if (list.GetProperty("approvals").EnumerateArray().FirstOrDefault() is { ValueKind: JsonValueKind.Object } pending)
            {
                return pending;
            }
            await Task.Delay(50);
        }
        throw new TimeoutException("No approval was requested.");
    }


    private static async Task<HttpResponseMessage> PostRpcAsync(Uri gateway, string apiKey, string body, params (string Name, string Value)[] headers)
    {
        using var client = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, gateway) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.TryAddWithoutValidation("X-API-Key", apiKey);
        request.Headers.TryAddWithoutValidation("Accept", "application/json, text/event-stream");
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        return await client.SendAsync(request);
    }

}

public sealed class ToolPolicyTestsOnSqlite(QuickGatewayOnSqlite server) : ToolPolicyTests(server), IClassFixture<QuickGatewayOnSqlite>;

public sealed class ToolPolicyTestsOnPostgres(QuickGatewayOnPostgres cluster) : ToolPolicyTests(cluster), IClassFixture<QuickGatewayOnPostgres>
{
    [Fact]
    public async Task A_call_held_on_one_node_goes_through_when_the_owner_approves_on_another()
    {
        var upstream = await TestMcpUpstream.StartAsync();
        await using var _ = upstream;
        var caller = await CallerAsync(cluster);
        var created = await caller.Client.PostAsJsonAsync("/mcp/servers", new { name = "Repo tools", url = upstream.Endpoint.AbsoluteUri });
        var server = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement;
        var id = server.GetProperty("id").GetString()!;
        (await caller.Client.PutAsJsonAsync($"/mcp/servers/{id}/tools/delete_repo/policy", new { action = "require_approval" })).EnsureSuccessStatusCode();
        await using var agent = await ConnectAsync(new Uri(server.GetProperty("gateway_url").GetString()!), caller.ApiKey);
        using var otherNode = new HttpClient { BaseAddress = cluster.OtherNode };
        otherNode.DefaultRequestHeaders.Add("X-API-Key", caller.ApiKey);

        var call = agent.CallToolAsync("delete_repo", new Dictionary<string, object?> { ["repo"] = "latchkey/x" }).AsTask();
        var pending = await WaitForPendingAsync(caller, otherNode);
        var approvalId = pending.GetProperty("id").GetString()!;
        // Both nodes race to decide: one decision wins, the other is told it came second.
        var decisions = await Task.WhenAll(
            otherNode.PostAsJsonAsync($"/mcp/approvals/{approvalId}", new { decision = "approve" }),
            caller.Client.PostAsJsonAsync($"/mcp/approvals/{approvalId}", new { decision = "approve" }));

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.Conflict], decisions.Select(d => d.StatusCode).Order());
        Assert.Equal("deleted latchkey/x with credential none", Text(await call));
        Assert.Single(upstream.CallsOf("delete_repo"));
    }
}

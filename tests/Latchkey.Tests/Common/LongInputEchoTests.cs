using System.Net;
using System.Net.Http.Json;
using System.Text;
using Latchkey.Common;
using Latchkey.Features.Accounts;
using Latchkey.Features.Operations;
using Latchkey.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using static Latchkey.Tests.Infrastructure.TestBroker;

namespace Latchkey.Tests.Common;

/// <summary>
/// A megabyte of input in any field is answered with the usual error and a short body that quotes
/// at most a prefix of it (<see cref="InputEcho"/>): in the broker, the MCP servers and gateway,
/// API keys, the security log, and the shared JSON and binding errors.
/// </summary>
public abstract class LongInputEchoTests(LatchkeyServerFixture server)
{
    private const int Megabyte = 1_000_000;

    /// <summary>Long enough for a path or query value: Kestrel's request line stops at 8 KiB (then 414).</summary>
    private const int InPath = 7_000;

    /// <summary>"echoecho…": any window of it longer than <paramref name="length"/> + 3 holds this.</summary>
    private static string Input(int length) => string.Concat(Enumerable.Repeat("echo", length / 4 + 1))[..length];

    /// <summary>Any 1,000 characters of the input (the bar), and any 71 (what InputEcho allows: 64 and an ellipsis).</summary>
    private static readonly string ThousandOfTheInput = string.Concat(Enumerable.Repeat("echo", 249));
    private static readonly string MoreThanAPrefix = string.Concat(Enumerable.Repeat("echo", InputEcho.MaxLength / 4 + 1));

    [Fact]
    public async Task Each_operation_that_quotes_a_field_answers_a_megabyte_of_it_with_the_usual_error_and_a_short_body()
    {
        var caller = await CallerAsync(server);
        var serverId = (await PostAsync(caller, "/mcp/servers", new { name = "Echo", url = "http://127.0.0.1:9/mcp" }, HttpStatusCode.Created)).GetProperty("id").GetString()!;
        var (securityKey, _) = await TestAccounts.CreateKeyAsync(caller.Account, "READ_SECURITY_EVENTS");
        var big = Input(Megabyte);
        var pathValue = Input(InPath);

        var cases = new (string Name, Func<Task<HttpResponseMessage>> Send, HttpStatusCode Expected)[]
        {
            ("init provider_id", () => Json(caller.Client, HttpMethod.Post, "/mcp/oauth/init", new { provider_id = big, redirect_uri = "https://agent.example.com/done" }), HttpStatusCode.NotFound),
            ("status credential_id", () => Json(caller.Client, HttpMethod.Post, "/mcp/oauth/status", new { credential_id = big }), HttpStatusCode.NotFound),
            ("refresh-token credential_id", () => Json(caller.Client, HttpMethod.Post, "/mcp/oauth/refresh-token", new { credential_id = big }), HttpStatusCode.NotFound),
            ("providers provider", () => Json(caller.Client, HttpMethod.Post, "/mcp/providers", new { provider = big, client_id = "c", client_secret = "s" }), HttpStatusCode.BadRequest),
            ("providers template name", () => Json(caller.Client, HttpMethod.Post, "/mcp/providers",
                new { provider = "shopify", client_id = "c", client_secret = "s", template = new Dictionary<string, string> { ["shop"] = "acme", [big] = "x" } }), HttpStatusCode.BadRequest),
            ("property name in a broker body", () => Raw(caller.Client, HttpMethod.Post, "/mcp/providers", $"{{\"{big}\":1}}"), HttpStatusCode.BadRequest),
            ("server patch field name", () => Json(caller.Client, HttpMethod.Patch, $"/mcp/servers/{serverId}", new Dictionary<string, string> { [big] = "x" }), HttpStatusCode.BadRequest),
            ("tool credential_id", () => Json(caller.Client, HttpMethod.Put, $"/mcp/servers/{serverId}/tools/read_repo/credential", new { credential_id = big }), HttpStatusCode.NotFound),
            ("tool name", () => Json(caller.Client, HttpMethod.Put, $"/mcp/servers/{serverId}/tools/{pathValue}/credential", new { credential_id = "x" }), HttpStatusCode.BadRequest),
            ("tool mapping removal", () => caller.Client.DeleteAsync($"/mcp/servers/{serverId}/tools/{pathValue}/credential"), HttpStatusCode.NotFound),
            ("tool-calls limit", () => caller.Client.GetAsync($"/mcp/servers/{serverId}/tool-calls?limit={pathValue}"), HttpStatusCode.BadRequest),
            ("credential id", () => caller.Client.GetAsync($"/mcp/credentials/{pathValue}"), HttpStatusCode.NotFound),
            ("credential access token", () => caller.Client.PostAsync($"/mcp/credentials/{pathValue}/access-token", null), HttpStatusCode.NotFound),
            ("credential removal", () => caller.Client.DeleteAsync($"/mcp/credentials/{pathValue}"), HttpStatusCode.NotFound),
            ("provider id", () => caller.Client.GetAsync($"/mcp/providers/{pathValue}"), HttpStatusCode.NotFound),
            ("server id", () => caller.Client.GetAsync($"/mcp/servers/{pathValue}"), HttpStatusCode.NotFound),
            ("gateway server id", () => Raw(caller.Client, HttpMethod.Post, $"/mcp/servers/{pathValue}/mcp", """{"jsonrpc":"2.0","id":1,"method":"tools/list"}"""), HttpStatusCode.NotFound),
            ("gateway server id, no credentials", () => server.CreateClient().PostAsync($"/mcp/servers/{pathValue}/mcp", null), HttpStatusCode.NotFound),
            ("protected resource metadata", () => server.CreateClient().GetAsync($"/.well-known/oauth-protected-resource/mcp/servers/{pathValue}/mcp"), HttpStatusCode.NotFound),
            ("API key id", () => caller.Account.Session.GetAsync($"/api/keys/{pathValue}"), HttpStatusCode.NotFound),
            ("property name in an API key body", () => Raw(caller.Account.Session, HttpMethod.Post, "/api/keys", $"{{\"{big}\":1}}"), HttpStatusCode.BadRequest),
            ("security event type", () => WithKey(securityKey).GetAsync($"/external-api/v1/security-events?type={pathValue}"), HttpStatusCode.BadRequest),
        };

        foreach (var (name, send, expected) in cases)
        {
            using var response = await send();
            await AssertShortErrorAsync(name, response, expected);
        }
    }

    [Fact]
    public async Task A_body_just_under_the_size_limit_reaches_the_handler_and_is_not_echoed_and_one_over_it_is_413()
    {
        var caller = await CallerAsync(server);
        var limit = (int)server.Services.GetRequiredService<IOptions<ServerOptions>>().Value.MaxRequestBodyBytes;
        string Body(int valueLength) => $$"""{"provider_id":"{{Input(valueLength)}}","redirect_uri":"https://agent.example.com/done"}""";
        var overhead = Encoding.UTF8.GetByteCount(Body(0));

        var justUnder = Body(limit - 1 - overhead);
        Assert.Equal(limit - 1, Encoding.UTF8.GetByteCount(justUnder));
        using (var response = await Raw(caller.Client, HttpMethod.Post, "/mcp/oauth/init", justUnder))
        {
            await AssertShortErrorAsync("just under the limit", response, HttpStatusCode.NotFound);
        }
        using (var response = await Raw(caller.Client, HttpMethod.Post, "/mcp/oauth/init", Body(limit + 1 - overhead)))
        {
            await AssertShortErrorAsync("just over the limit", response, HttpStatusCode.RequestEntityTooLarge);
        }
    }

    [Fact]
    public async Task An_unknown_time_zone_is_quoted_as_a_prefix()
    {
        await using var scope = server.Services.CreateAsyncScope();
        var registration = scope.ServiceProvider.GetRequiredService<AccountRegistration>();

        var result = await registration.RegisterAsync(TestAccounts.NewEmail(), "Echo", Input(Megabyte), TestAccounts.Password);

        var message = Assert.Single(result.Errors["time_zone"]);
        Assert.DoesNotContain(MoreThanAPrefix, message);
        Assert.Contains($"({Megabyte} characters)", message);
    }

    private static async Task AssertShortErrorAsync(string name, HttpResponseMessage response, HttpStatusCode expected)
    {
        var body = await response.Content.ReadAsStringAsync();
        var shown = body.Length > 300 ? body[..300] + "…" : body;
        Assert.True(response.StatusCode == expected, $"{name}: {(int)response.StatusCode} {shown}");
        Assert.True(body.Length < 2000, $"{name}: {body.Length} characters: {shown}");
        Assert.DoesNotContain(ThousandOfTheInput, body);
        Assert.False(body.Contains(MoreThanAPrefix, StringComparison.Ordinal), $"{name} repeats more than {InputEcho.MaxLength} characters of its input: {shown}");
        foreach (var header in response.Headers)
        {
            Assert.False(string.Join(", ", header.Value).Contains(MoreThanAPrefix, StringComparison.Ordinal), $"{name}: header {header.Key} repeats the input");
        }
    }

    private static Task<HttpResponseMessage> Json(HttpClient client, HttpMethod method, string path, object body) =>
        client.SendAsync(new HttpRequestMessage(method, path) { Content = JsonContent.Create(body) });

    private static Task<HttpResponseMessage> Raw(HttpClient client, HttpMethod method, string path, string json) =>
        client.SendAsync(new HttpRequestMessage(method, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") });

    private HttpClient WithKey(string key)
    {
        var client = server.CreateClient();
        client.DefaultRequestHeaders.Add("X-API-Key", key);
        return client;
    }
}

public sealed class LongInputEchoTestsOnSqlite(SqliteServer server) : LongInputEchoTests(server), IClassFixture<SqliteServer>;

public sealed class LongInputEchoTestsOnPostgres(PostgresServer server) : LongInputEchoTests(server), IClassFixture<PostgresServer>;

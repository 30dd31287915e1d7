using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Client;
using Xunit.Abstractions;
using static Latchkey.Tests.Infrastructure.OAuthClient;

namespace Latchkey.Tests.Operations;

/// <summary>
/// Every flow that creates or uses a secret, with every log line of every category captured at
/// Trace: no password, key, token, code, verifier, state or client secret appears in any of them.
/// </summary>
public abstract class LogSecrecyTests(LatchkeyServerFixture server, CapturedLogs logs, ITestOutputHelper output) : IAsyncLifetime
{
    private readonly KnownSecrets _secrets = new();
    private LoopbackPeers _peers = null!;

    public async Task InitializeAsync() => _peers = await LoopbackPeers.StartAsync();

    public async Task DisposeAsync() => await _peers.DisposeAsync();

    [Fact]
    public async Task The_gateways_log_lines_carry_the_trace_the_agent_named_in_meta()
    {
        var caller = await TestBroker.CallerAsync(server);
        var created = await TestBroker.PostAsync(caller, "/mcp/servers", new { name = "Gone", url = "http://127.0.0.1:9/mcp" }, System.Net.HttpStatusCode.Created);
        var traceId = System.Diagnostics.ActivityTraceId.CreateRandom().ToHexString();

        await caller.Client.PostAsync(created.GetProperty("gateway_url").GetString(), new StringContent(
            """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{},"_meta":{"traceparent":"00-""" + traceId + """-0123456789abcdef-01"}}}""",
            System.Text.Encoding.UTF8, "application/json"));

        Assert.Contains(logs.Lines, l => l.Category.EndsWith("McpGateway", StringComparison.Ordinal) && l.TraceId == traceId);
    }

    [Fact]
    public async Task No_secret_appears_in_any_log_line_at_any_level()
    {
        var account = await SignUpAndSignInAsync();
        var apiKey = await ApiKeyLifecycleAsync(account);
        await RegisteredClientCodeFlowAsync(account);
        await ClientCredentialsAsync(account);
        var credentialId = await BrokerFlowAsync(account, apiKey);
        await GatewayCallAsync(apiKey, credentialId);

        var lines = logs.Lines.ToArray();
        output.WriteLine($"{lines.Length} log lines captured ({lines.Count(l => l.Level <= LogLevel.Debug)} at Debug or Trace); {_secrets.All.Count} secrets checked.");
        // The capture works at the most verbose level, for the framework and the libraries too.
        Assert.Contains(lines, l => l.Level == LogLevel.Trace && l.Category.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Level <= LogLevel.Debug && l.Category.StartsWith("OpenIddict", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Level <= LogLevel.Debug && l.Category.StartsWith("Microsoft.EntityFrameworkCore", StringComparison.Ordinal));

        var leaks = lines
            .SelectMany(l => _secrets.FoundIn(l.Text).Select(secret => (Line: l, Secret: secret[..secret.IndexOf(" (", StringComparison.Ordinal)])))
            .GroupBy(l => $"[{l.Line.Level} {l.Line.Category}] {l.Secret}")
            .Select(g => $"{g.Key} x{g.Count()}, e.g. {Shorten(g.First().Line.Text)}")
            .ToList();
        Assert.True(leaks.Count == 0, "Secrets in log lines:\n" + string.Join("\n", leaks));
    }

    /// <summary>Sign-up, a failed sign-in (wrong password) and a sign-in, through the pages.</summary>
    private async Task<TestAccount> SignUpAndSignInAsync()
    {
        var email = TestAccounts.NewEmail();
        var password = "pw-" + Guid.NewGuid().ToString("N");
        var wrongPassword = "wrong-" + Guid.NewGuid().ToString("N");
        _secrets.Add("password", password);
        _secrets.Add("wrong password", wrongPassword);

        var signUp = await Browser.SubmitFormAsync(server.CreateClient(), "/account/sign-up", new Dictionary<string, string>
        {
            ["Input.Email"] = email, ["Input.DisplayName"] = "Log Reader", ["Input.TimeZone"] = "UTC",
            ["Input.Password"] = password, ["Input.ConfirmPassword"] = password,
        });
        Assert.Equal(HttpStatusCode.Redirect, signUp.StatusCode);

        var session = server.CreateClient();
        var failed = await TestAccounts.SignInAsync(session, email, wrongPassword);
        Assert.Equal(HttpStatusCode.OK, failed.StatusCode);
        var signIn = await Browser.SubmitFormAsync(session, "/account/sign-in", new Dictionary<string, string> { ["Input.Email"] = email, ["Input.Password"] = password });
        Assert.Equal(HttpStatusCode.Redirect, signIn.StatusCode);
        return new TestAccount(email, password, "Log Reader", session);
    }

    /// <summary>Create, use (header and bearer), revoke, and use once more (refused).</summary>
    private async Task<string> ApiKeyLifecycleAsync(TestAccount account)
    {
        using var scopeList = JsonDocument.Parse(await account.Session.GetStringAsync("/api/scopes"));
        var scopes = scopeList.RootElement.GetProperty("scopes").EnumerateArray().Select(s => s.GetProperty("name").GetString()!).ToArray();
        var (key, _) = await TestAccounts.CreateKeyAsync(account, scopes);
        var (doomed, doomedId) = await TestAccounts.CreateKeyAsync(account, "IDENTITY");
        _secrets.Add("API key", key);
        _secrets.Add("revoked API key", doomed);

        foreach (var (header, value) in new[] { ("X-API-Key", doomed), ("Authorization", "Bearer " + doomed) })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/external-api/v1/me");
            request.Headers.TryAddWithoutValidation(header, value);
            Assert.Equal(HttpStatusCode.OK, (await server.CreateClient().SendAsync(request)).StatusCode);
        }
        Assert.Equal(HttpStatusCode.NoContent, (await account.Session.DeleteAsync($"/api/keys/{doomedId}")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await TestAccounts.CallMeWithKeyAsync(server.CreateClient(), doomed)).StatusCode);
        return key;
    }

    /// <summary>Dynamic registration, authorization code with PKCE and state, token, refresh, introspection, userinfo, revocation.</summary>
    private async Task RegisteredClientCodeFlowAsync(TestAccount account)
    {
        var registrar = server.CreateClient();
        registrar.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", LatchkeyServerFixture.InitialAccessToken);
        _secrets.Add("initial access token", LatchkeyServerFixture.InitialAccessToken);
        var registration = await registrar.PostAsJsonAsync("/api/oauth/register", new
        {
            client_name = "Log Reader App",
            redirect_uris = new[] { "https://logs.example.com/cb" },
            token_endpoint_auth_method = "client_secret_post",
            scope = "openid IDENTITY",
        });
        Assert.Equal(HttpStatusCode.Created, registration.StatusCode);
        using var registered = JsonDocument.Parse(await registration.Content.ReadAsStringAsync());
        var app = new RegisteredApp(
            registered.RootElement.GetProperty("client_id").GetString()!,
            registered.RootElement.GetProperty("client_secret").GetString()!,
            "https://logs.example.com/cb");
        _secrets.Add("registered client secret", app.ClientSecret);
        if (registered.RootElement.TryGetProperty("registration_access_token", out var management))
        {
            _secrets.Add("registration access token", management.GetString());
        }

        var (verifier, challenge) = NewPkce();
        var state = "st-" + Guid.NewGuid().ToString("N");
        _secrets.Add("PKCE verifier", verifier);
        _secrets.Add("authorization state", state);
        var outcome = await AuthorizeAsync(account.Session, AuthorizeUrl(app, "openid IDENTITY", challenge, state));
        Assert.True(outcome.Query.TryGetValue("code", out var code), $"No code: {outcome.Response.StatusCode}");
        _secrets.Add("authorization code", code);

        var tokens = await RedeemCodeAsync(server.CreateClient(), app, code!, verifier);
        var accessToken = tokens.GetProperty("access_token").GetString()!;
        _secrets.Add("access token", accessToken);
        _secrets.Add("refresh token", tokens.GetProperty("refresh_token").GetString());
        if (tokens.TryGetProperty("id_token", out var idToken))
        {
            _secrets.Add("id token", idToken.GetString());
        }

        var refreshed = await TokenAsync(server.CreateClient(), RefreshParameters(app, tokens.GetProperty("refresh_token").GetString()!));
        Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
        using var refreshedTokens = JsonDocument.Parse(await refreshed.Content.ReadAsStringAsync());
        var newAccessToken = refreshedTokens.RootElement.GetProperty("access_token").GetString()!;
        var newRefreshToken = refreshedTokens.RootElement.GetProperty("refresh_token").GetString()!;
        _secrets.Add("refreshed access token", newAccessToken);
        _secrets.Add("refreshed refresh token", newRefreshToken);

        Assert.True((await IntrospectAsync(server.CreateClient(), app, newAccessToken)).GetProperty("active").GetBoolean());
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(server.CreateClient(), newAccessToken)).StatusCode);
        using var userInfo = new HttpRequestMessage(HttpMethod.Get, "/api/oauth/userinfo") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", newAccessToken) } };
        Assert.Equal(HttpStatusCode.OK, (await server.CreateClient().SendAsync(userInfo)).StatusCode);
        foreach (var (token, hint) in new[] { (newRefreshToken, "refresh_token"), (newAccessToken, "access_token") })
        {
            var revoked = await server.CreateClient().PostAsync("/api/oauth/revoke", new FormUrlEncodedContent(ClientParameters(app, token, hint)));
            Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        }
        // A revoked token, refused: its refusal is logged too.
        Assert.Equal(HttpStatusCode.Unauthorized, (await CallMeAsync(server.CreateClient(), newAccessToken)).StatusCode);
    }

    private async Task ClientCredentialsAsync(TestAccount account)
    {
        var app = await RegisterAppAsync(account);
        _secrets.Add("app client secret", app.ClientSecret);
        var response = await TokenAsync(server.CreateClient(), new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = app.ClientId, ["client_secret"] = app.ClientSecret!, ["scope"] = "READ_GRAPH",
        });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        _secrets.Add("client credentials access token", body.RootElement.GetProperty("access_token").GetString());
        // A wrong secret, refused.
        var refused = await TokenAsync(server.CreateClient(), new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = app.ClientId, ["client_secret"] = app.ClientSecret![..^2] + "zz",
        });
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
    }

    /// <summary>init, the provider, callback, exchange, the access token read, a refresh.</summary>
    private async Task<string> BrokerFlowAsync(TestAccount account, string apiKey)
    {
        var caller = new BrokerCaller(server.CreateClient(), account.Email, apiKey, account);
        caller.Client.DefaultRequestHeaders.Add("X-API-Key", apiKey);
        _secrets.Add("provider client secret", TestOAuthProvider.ClientSecret);
        var providerId = await TestBroker.AddProviderAsync(caller, _peers.Provider);

        var init = await TestBroker.PostAsync(caller, "/mcp/oauth/init", new { provider_id = providerId, redirect_uri = "https://agent.example.com/done" });
        var state = init.GetProperty("state").GetString()!;
        _secrets.Add("broker state", state);
        var code = await TestBroker.VisitAsync(init.GetProperty("auth_url").GetString()!);
        _secrets.Add("provider authorization code", code);
        _secrets.Add("provider PKCE verifier", _peers.Provider.VerifiedPkce.LastOrDefault());
        await TestBroker.PostAsync(caller, "/mcp/oauth/callback", new { code, state });
        var exchange = await TestBroker.PostAsync(caller, "/mcp/oauth/exchange-token", new { state });
        _secrets.Add("provider PKCE verifier", _peers.Provider.VerifiedPkce.LastOrDefault());
        _secrets.Add("provider access token", _peers.Provider.LastIssuedAccessToken);
        _secrets.Add("provider refresh token", _peers.Provider.LastIssuedRefreshToken);
        var credentialId = exchange.GetProperty("credential_id").GetString()!;

        var read = await TestBroker.PostAsync(caller, $"/mcp/credentials/{credentialId}/access-token", new { });
        Assert.Equal(_peers.Provider.LastIssuedAccessToken, read.GetProperty("access_token").GetString());
        await TestBroker.PostAsync(caller, "/mcp/oauth/refresh-token", new { credential_id = credentialId });
        _secrets.Add("refreshed provider access token", _peers.Provider.LastIssuedAccessToken);
        _secrets.Add("refreshed provider refresh token", _peers.Provider.LastIssuedRefreshToken);
        return credentialId;
    }

    /// <summary>A tool call through the gateway, which puts the stored credential's token on the upstream call.</summary>
    private async Task GatewayCallAsync(string apiKey, string credentialId)
    {
        var api = server.CreateClient();
        api.DefaultRequestHeaders.Add("X-API-Key", apiKey);
        var created = await api.PostAsJsonAsync("/mcp/servers", new { name = "Log tools", url = _peers.Upstream.Endpoint.AbsoluteUri, default_credential_id = credentialId });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        using var body = JsonDocument.Parse(await created.Content.ReadAsStringAsync());
        var transport = new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = new Uri(body.RootElement.GetProperty("gateway_url").GetString()!),
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = new Dictionary<string, string> { ["X-API-Key"] = apiKey },
        });
        await using var client = await McpClient.CreateAsync(transport);
        var result = await client.CallToolAsync("read_repo", new Dictionary<string, object?> { ["repo"] = "octo/logs" });
        Assert.NotEqual(true, result.IsError);
    }

    private static string Shorten(string text) => text.Length <= 400 ? text : text[..400] + "…";
}

public sealed class LogSecrecyTestsOnSqlite(LogCapturingSqliteServer server, ITestOutputHelper output)
    : LogSecrecyTests(server, server.Logs, output), IClassFixture<LogCapturingSqliteServer>;

public sealed class LogSecrecyTestsOnPostgres(LogCapturingPostgresServer server, ITestOutputHelper output)
    : LogSecrecyTests(server, server.Logs, output), IClassFixture<LogCapturingPostgresServer>;

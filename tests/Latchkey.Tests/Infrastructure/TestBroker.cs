using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Tests.Infrastructure;

/// <summary>An account calling the broker with its API key.</summary>
public sealed record BrokerCaller(HttpClient Client, string AccountEmail, string ApiKey, TestAccount Account);

/// <summary>The broker's wire contract driven from tests: a provider on loopback, flows, stored credentials.</summary>
public static class TestBroker
{
    public static async Task<BrokerCaller> CallerAsync(LatchkeyServerFixture server)
    {
        var account = await TestAccounts.SignUpAsync(server);
        var (key, _) = await TestAccounts.CreateKeyAsync(account, "IDENTITY");
        var client = server.CreateClient();
        client.DefaultRequestHeaders.Add("X-API-Key", key);
        return new BrokerCaller(client, account.Email, key, account);
    }

    public static async Task<string> AddProviderAsync(BrokerCaller caller, TestOAuthProvider provider, string? tokenPath = null, string tokenAuth = "post")
    {
        var response = await caller.Client.PostAsJsonAsync("/mcp/providers", new
        {
            provider = "custom",
            client_id = TestOAuthProvider.ClientId,
            client_secret = TestOAuthProvider.ClientSecret,
            custom = provider.Definition(tokenPath, tokenAuth),
        });
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, body);
        return JsonDocument.Parse(body).RootElement.GetProperty("id").GetString()!;
    }

    public static async Task<JsonElement> PostAsync(BrokerCaller caller, string path, object body, HttpStatusCode expected = HttpStatusCode.OK)
    {
        var response = await caller.Client.PostAsJsonAsync(path, body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{path}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>Any method with an optional JSON body; the answer's JSON (default when empty), asserting its status.</summary>
    public static async Task<JsonElement> SendAsync(BrokerCaller caller, HttpMethod method, string path, object? body, HttpStatusCode expected)
    {
        using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) };
        var response = await caller.Client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{method} {path}: {(int)response.StatusCode} {text}");
        return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>init, the user's visit to the provider, callback and exchange: a stored credential.</summary>
    public static async Task<(JsonElement Exchange, string State)> ConnectAsync(BrokerCaller caller, string providerId)
    {
        var init = await PostAsync(caller, "/mcp/oauth/init", new { provider_id = providerId, redirect_uri = "https://agent.example.com/oauth/done" });
        var state = init.GetProperty("state").GetString()!;
        var code = await VisitAsync(init.GetProperty("auth_url").GetString()!);
        var callback = await PostAsync(caller, "/mcp/oauth/callback", new { code, state });
        Assert.Equal("code_received", callback.GetProperty("status").GetString());
        return (await PostAsync(caller, "/mcp/oauth/exchange-token", new { state }), state);
    }

    /// <summary>A stored credential's id, connected through a new provider instance.</summary>
    public static async Task<string> ConnectedCredentialAsync(BrokerCaller caller, TestOAuthProvider provider)
    {
        var (exchange, _) = await ConnectAsync(caller, await AddProviderAsync(caller, provider));
        return exchange.GetProperty("credential_id").GetString()!;
    }

    /// <summary>
    /// Makes a stored credential's token expire in <paramref name="seconds"/>, as if refreshed an hour
    /// ago: within the refresh margin (which is capped at half the token's lifetime), and with no
    /// recent refresh for a forced one to coalesce with.
    /// </summary>
    public static Task<int> ExpireSoonAsync(LatchkeyServerFixture server, string credentialId, int seconds = 30)
    {
        var now = DateTimeOffset.UtcNow;
        return server.WithDbAsync(db => db.BrokerCredentials.Where(c => c.Id == credentialId).ExecuteUpdateAsync(s => s
            .SetProperty(c => c.ExpiresAt, now.AddSeconds(seconds))
            .SetProperty(c => c.LastRefreshedAt, now.AddHours(-1))));
    }

    /// <summary>The user's visit to the provider's authorize URL, which redirects back with a code.</summary>
    public static async Task<string> VisitAsync(string authUrl)
    {
        using var browser = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false });
        var response = await browser.GetAsync(authUrl);
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        return QueryHelpers.ParseQuery(response.Headers.Location!.Query)["code"].ToString();
    }
}

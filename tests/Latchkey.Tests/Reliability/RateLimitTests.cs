using System.Net;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;

namespace Latchkey.Tests.Reliability;

/// <summary>A server with rate limits on, small enough to reach: bursts of three, refilled once a minute.</summary>
public sealed class RateLimitedServer : SqliteServer
{
    protected override void ConfigureServer(WebApplicationBuilder builder) =>
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["RateLimits:Enabled"] = "true",
            ["RateLimits:TokenPerClient:PerMinute"] = "1",
            ["RateLimits:TokenPerClient:Burst"] = "3",
            ["RateLimits:TokenPerAddress:PerMinute"] = "1000",
            ["RateLimits:TokenPerAddress:Burst"] = "1000",
            ["RateLimits:AuthorizePerAddress:PerMinute"] = "1",
            ["RateLimits:AuthorizePerAddress:Burst"] = "3",
            ["RateLimits:SignInPerAddress:PerMinute"] = "1",
            ["RateLimits:SignInPerAddress:Burst"] = "3",
            ["RateLimits:BrokerPerApiKey:PerMinute"] = "1",
            ["RateLimits:BrokerPerApiKey:Burst"] = "3",
            ["RateLimits:BrokerPerAddress:PerMinute"] = "1000",
            ["RateLimits:BrokerPerAddress:Burst"] = "1000",
        });
}

/// <summary>Rate limits per client, API key and source address answer 429 with Retry-After in each endpoint's error shape.</summary>
public sealed class RateLimitTests(RateLimitedServer server) : IClassFixture<RateLimitedServer>
{
    private static async Task<int> RequestsUntilRefusedAsync(Func<Task<HttpResponseMessage>> send, Action<HttpResponseMessage, JsonElement> check)
    {
        for (var attempt = 1; attempt <= 10; attempt++)
        {
            var response = await send();
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                Assert.True(response.Headers.RetryAfter?.Delta is { } delay && delay >= TimeSpan.FromSeconds(1), "429 without a Retry-After in seconds");
                using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
                check(response, body.RootElement);
                return attempt;
            }
        }
        Assert.Fail("Ten requests in a row were all let through");
        return 0;
    }

    private static FormUrlEncodedContent TokenRequest(string clientId) => new(new Dictionary<string, string>
    {
        ["grant_type"] = "client_credentials",
        ["client_id"] = clientId,
        ["client_secret"] = "not-the-secret",
    });

    [Fact]
    public async Task The_token_endpoint_limits_each_client_and_answers_in_the_oauth_shape()
    {
        using var client = server.CreateClient();
        var first = $"client-{Guid.NewGuid():N}";
        var attempts = await RequestsUntilRefusedAsync(() => client.PostAsync("/api/oauth/token", TokenRequest(first)), (_, body) =>
        {
            Assert.Equal("temporarily_unavailable", body.GetProperty("error").GetString());
            Assert.Contains("Too many requests", body.GetProperty("error_description").GetString());
        });
        Assert.Equal(4, attempts);
        // Another client from the same address has its own bucket.
        var other = await client.PostAsync("/api/oauth/token", TokenRequest($"client-{Guid.NewGuid():N}"));
        Assert.NotEqual(HttpStatusCode.TooManyRequests, other.StatusCode);
        // The client id in Basic credentials counts the same as in the form.
        var basic = new HttpRequestMessage(HttpMethod.Post, "/api/oauth/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }),
        };
        basic.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{first}:x")));
        Assert.Equal(HttpStatusCode.TooManyRequests, (await client.SendAsync(basic)).StatusCode);
    }

    [Fact]
    public async Task The_broker_limits_each_api_key_and_answers_in_the_broker_shape()
    {
        var email = TestAccounts.NewEmail();
        Assert.Equal(0, (await server.RunCliAsync(["users", "create", "--email", email, "--name", "Limited"])).ExitCode);
        async Task<HttpClient> KeyedClientAsync()
        {
            var created = await server.RunCliAsync(["keys", "create", "--user", email, "--name", "k", "--scope", "IDENTITY"]);
            Assert.Equal(0, created.ExitCode);
            var client = server.CreateClient();
            client.DefaultRequestHeaders.Add("X-API-Key", created.Output.Split('\n')[1].Trim());
            return client;
        }
        using var first = await KeyedClientAsync();
        using var second = await KeyedClientAsync();

        var attempts = await RequestsUntilRefusedAsync(() => first.GetAsync("/mcp/credentials"), (_, body) =>
            Assert.Equal("rate_limited", body.GetProperty("error").GetString()));
        Assert.Equal(4, attempts);
        Assert.Equal(HttpStatusCode.OK, (await second.GetAsync("/mcp/credentials")).StatusCode);
    }

    [Fact]
    public async Task Sign_in_posts_are_limited_per_address_with_problem_details()
    {
        using var browser = server.CreateClient();
        var attempts = await RequestsUntilRefusedAsync(() => browser.PostAsync("/account/sign-in", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Input.Email"] = "nobody@example.com",
            ["Input.Password"] = "wrong password",
        })), (response, body) =>
        {
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Equal(429, body.GetProperty("status").GetInt32());
        });
        Assert.InRange(attempts, 1, 4);
        // Reading the page is not limited.
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/account/sign-in")).StatusCode);
    }

    [Fact]
    public async Task The_authorize_endpoint_is_limited_per_address()
    {
        using var browser = server.CreateClient();
        var attempts = await RequestsUntilRefusedAsync(() => browser.GetAsync("/auth/authorize?client_id=nobody&response_type=code"), (_, body) =>
            Assert.Equal("temporarily_unavailable", body.GetProperty("error").GetString()));
        Assert.InRange(attempts, 1, 4);
    }
}

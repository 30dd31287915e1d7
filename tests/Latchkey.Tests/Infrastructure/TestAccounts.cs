using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Latchkey.Tests.Infrastructure;

/// <summary>A signed-up user and their browser session.</summary>
public sealed record TestAccount(string Email, string Password, string DisplayName, HttpClient Session);

public static class TestAccounts
{
    public const string Password = "correct horse battery staple";

    public static string NewEmail() => $"user-{Guid.NewGuid():N}@example.com";

    /// <summary>Signs a new user up through the sign-up form, as a person would.</summary>
    public static async Task<TestAccount> SignUpAsync(LatchkeyServerFixture server, string timeZone = "Europe/Berlin", CookieContainer? cookies = null)
    {
        var client = server.CreateClient(cookies);
        var email = NewEmail();
        var response = await Browser.SubmitFormAsync(client, "/account/sign-up", new Dictionary<string, string>
        {
            ["Input.Email"] = email,
            ["Input.DisplayName"] = "Test User",
            ["Input.TimeZone"] = timeZone,
            ["Input.Password"] = Password,
            ["Input.ConfirmPassword"] = Password,
        });
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        return new TestAccount(email, Password, "Test User", client);
    }

    /// <summary>Submits the sign-in form (with its antiforgery token) as <paramref name="client"/>: a redirect when it signed in.</summary>
    public static Task<HttpResponseMessage> SignInAsync(HttpClient client, string email, string password) =>
        Browser.SubmitFormAsync(client, "/account/sign-in", new Dictionary<string, string>
        {
            ["Input.Email"] = email,
            ["Input.Password"] = password,
        });

    /// <summary><c>GET /external-api/v1/me</c> with an API key.</summary>
    public static Task<HttpResponseMessage> CallMeWithKeyAsync(HttpClient client, string apiKey) =>
        client.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/external-api/v1/me") { Headers = { { "X-API-Key", apiKey } } });

    /// <summary>Creates an API key through the JSON API and returns the key and its id.</summary>
    public static async Task<(string Key, string Id)> CreateKeyAsync(TestAccount account, params string[] scopes)
    {
        var response = await account.Session.PostAsJsonAsync("/api/keys", new { name = "test key", scopes });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return (body.RootElement.GetProperty("key").GetString()!, body.RootElement.GetProperty("id").GetString()!);
    }
}

using System.Net;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using static Latchkey.Tests.Infrastructure.TestBroker;

namespace Latchkey.Tests.Pages;

/// <summary>The connect page an app sends its end users to with a connect session, in Chromium.</summary>
public sealed partial class PageTests
{
    private static async Task<JsonElement> ConnectSessionAsync(BrokerCaller app, string endUser, params string[] providerIds) =>
        await SendAsync(app, HttpMethod.Post, "/mcp/connect-sessions",
            new { end_user_id = endUser, provider_ids = providerIds, redirect_uri = AppRedirect, tags = new[] { "via-connect" } }, HttpStatusCode.Created);

    [Fact]
    public async Task An_end_user_connects_through_a_connect_session_with_no_account_and_the_app_hears_by_redirect_and_webhook()
    {
        await using var provider = await TestOAuthProvider.StartAsync();
        await using var receiver = await TestWebhookReceiver.StartAsync();
        var app = await CallerAsync(server);
        var oauthProvider = await AddProviderAsync(app, provider);
        await SendAsync(app, HttpMethod.Post, "/mcp/webhooks", new { url = receiver.Url.AbsoluteUri, events = new[] { "connect_session.completed" } }, HttpStatusCode.Created);

        // The app's backend creates the session; its front end opens the link (no API key in the browser).
        var session = await ConnectSessionAsync(app, "end-user-7", oauthProvider);
        var connectUrl = session.GetProperty("connect_url").GetString()!;
        Assert.StartsWith("lk_cs_", session.GetProperty("token").GetString());
        var page = await browser.NewPageAsync(server);
        var arrived = await CatchRedirectAsync(page);
        await page.GotoAsync(connectUrl);
        await BrowserFixture.CaptureAndCheckAsync(page, "connect-continue");
        await page.GetByRole(AriaRole.Button, new() { Name = "Continue" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Connect Test provider" })).ToBeVisibleAsync();
        Assert.DoesNotContain("token=", page.Url);
        await BrowserFixture.CaptureAndCheckAsync(page, "connect");
        await page.GetByRole(AriaRole.Button, new() { Name = "Connect Test provider" }).ClickAsync();

        var (_, query) = await BackAtTheAppAsync(page, arrived);
        Assert.Equal("completed", query["status"]);
        Assert.Equal(session.GetProperty("id").GetString(), query["connect_session_id"]);
        var credentialId = query["credential_id"].ToString();
        var stored = await server.WithDbAsync(db => db.BrokerCredentials.AsNoTracking().SingleAsync(c => c.Id == credentialId));
        Assert.Equal("end-user-7", stored.EndUserId);
        Assert.Equal("|via-connect|", stored.Tags);
        var status = await SendAsync(app, HttpMethod.Get, $"/mcp/connect-sessions/{session.GetProperty("id").GetString()}", null, HttpStatusCode.OK);
        Assert.Equal("completed", status.GetProperty("status").GetString());
        Assert.Equal(credentialId, status.GetProperty("credential_id").GetString());
        await Eventually.TrueAsync(() => receiver.Received.Any(r => r.Body.Contains(credentialId, StringComparison.Ordinal)), TimeSpan.FromSeconds(10), "the webhook hears of it");

        // The link is spent: opening it again, here or in another browser, is refused.
        var again = await browser.NewPageAsync(server);
        var response = await again.GotoAsync(connectUrl);
        Assert.Equal(400, response!.Status);
        await Assertions.Expect(again.GetByRole(AriaRole.Alert)).ToContainTextAsync("already been used");
    }

    [Fact]
    public async Task An_end_user_types_in_an_api_key_on_the_connect_page_and_a_refused_key_is_said_so()
    {
        await using var provider = await TestOAuthProvider.StartAsync();
        provider.ApiAccepts = headers => headers["X-API-Key"].ToString() == "good-key-123";
        var app = await CallerAsync(server);
        var typed = (await SendAsync(app, HttpMethod.Post, "/mcp/providers", new { provider = "custom", custom = provider.TypedDefinition("api_key") }, HttpStatusCode.Created))
            .GetProperty("id").GetString()!;
        var session = await ConnectSessionAsync(app, "end-user-8", typed);

        var page = await browser.NewPageAsync(server);
        var arrived = await CatchRedirectAsync(page);
        await page.GotoAsync(session.GetProperty("connect_url").GetString()!);
        await page.GetByRole(AriaRole.Button, new() { Name = "Continue" }).ClickAsync();
        await page.GetByLabel("API key").FillAsync("wrong-key");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save Test api_key provider" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("refused the credential");
        await BrowserFixture.CaptureAndCheckAsync(page, "connect-refused");

        await page.GetByLabel("API key").FillAsync("good-key-123");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save Test api_key provider" }).ClickAsync();
        var (_, query) = await BackAtTheAppAsync(page, arrived);
        Assert.Equal("completed", query["status"]);
        var read = await PostAsync(app, $"/mcp/credentials/{query["credential_id"]}/access-token", new { });
        Assert.Equal("good-key-123", read.GetProperty("access_token").GetString());
    }

    [Fact]
    public async Task A_signed_in_person_saves_a_typed_in_key_on_the_connections_page()
    {
        await using var provider = await TestOAuthProvider.StartAsync();
        provider.ApiAccepts = headers => headers["X-API-Key"].ToString() == "mine-456";
        var (page, email) = await SignUpAsync("Kay Keyholder");
        var userId = await server.WithDbAsync(db => db.Users.Where(u => u.Email == email).Select(u => u.Id).SingleAsync());
        await using (var scope = server.Services.CreateAsyncScope())
        {
            // The person's own provider (a deployment-wide one would show in other tests' pages too).
            var (created, error) = await scope.ServiceProvider.GetRequiredService<Latchkey.Features.Broker.Providers.ProviderService>().CreateAsync(userId,
                new(Latchkey.Features.Broker.Providers.ProviderService.CustomKey, null, null, "Keyed service",
                    null, JsonSerializer.Deserialize<Latchkey.Features.Broker.Providers.ProviderDefinition>(JsonSerializer.Serialize(provider.TypedDefinition("api_key")),
                        Latchkey.Features.Broker.Providers.ProviderCatalog.Json)), CancellationToken.None);
            Assert.True(created is not null, error);
        }

        await page.GotoAsync("/profile/connections");
        await page.GetByLabel("API key").FillAsync("mine-456");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save Keyed service" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Saved your Keyed service credential");
        var stored = await server.WithDbAsync(db => db.BrokerCredentials.AsNoTracking().SingleAsync(c => c.AccountId == userId));
        Assert.Equal("api_key", stored.Kind);
        // A typed-in credential has nothing to reconnect through a provider's page.
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { NameRegex = new System.Text.RegularExpressions.Regex("^Reconnect") })).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task The_connect_page_without_a_session_and_bad_session_requests_are_refused()
    {
        var page = await browser.NewPageAsync(server);
        var response = await page.GotoAsync("/connect");
        Assert.Equal(400, response!.Status);
        await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("no connection in progress");
        response = await page.GotoAsync("/connect?token=lk_cs_forged");
        Assert.Equal(400, response!.Status);

        var app = await CallerAsync(server);
        await SendAsync(app, HttpMethod.Post, "/mcp/connect-sessions", new { provider_ids = new[] { "x" } }, HttpStatusCode.BadRequest);
        await SendAsync(app, HttpMethod.Post, "/mcp/connect-sessions", new { end_user_id = "u", provider_ids = Array.Empty<string>() }, HttpStatusCode.BadRequest);
        await SendAsync(app, HttpMethod.Post, "/mcp/connect-sessions", new { end_user_id = "u", provider_ids = new[] { "provider_nope_001" } }, HttpStatusCode.NotFound);
        await SendAsync(app, HttpMethod.Get, "/mcp/connect-sessions/cs_0000000000000000", null, HttpStatusCode.NotFound);
    }
}

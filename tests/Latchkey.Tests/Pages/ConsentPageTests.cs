using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;
using static Latchkey.Tests.Infrastructure.OAuthClient;

namespace Latchkey.Tests.Pages;

/// <summary>
/// The consent page in headless Chromium for apps nobody vouches for: a self-registered app says
/// so and names where the browser will go; names stored with hidden characters (before those were
/// refused) are shown without them.
/// </summary>
public sealed class ConsentPageTests(PageServer server, BrowserFixture browser) : IClassFixture<PageServer>, IClassFixture<BrowserFixture>
{
    private const string AppRedirect = "https://app.example.com/callback";

    [Fact]
    public async Task A_self_registered_app_is_said_to_have_registered_itself_with_the_host_it_sends_you_to()
    {
        var app = await RegisterItselfAsync("Calendar Helper", AppRedirect);
        var page = await SignUpAsync("Sam Self");

        var (_, challenge) = NewPkce();
        await page.GotoAsync(AuthorizeUrl(app, "openid IDENTITY", challenge));

        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Calendar Helper wants to access your account" })).ToBeVisibleAsync();
        var notice = page.Locator("#self-registered");
        await Assertions.Expect(notice).ToBeVisibleAsync();
        await Assertions.Expect(notice).ToContainTextAsync("This app registered itself; Latchkey has not checked who runs it.");
        await Assertions.Expect(notice).ToContainTextAsync("After you approve you will be sent to app.example.com.");
        await Assertions.Expect(notice.Locator("strong")).ToHaveTextAsync("app.example.com");
        await Assertions.Expect(page.GetByText("Registered by")).ToHaveCountAsync(0);
        await BrowserFixture.CaptureAndCheckAsync(page, "consent-self-registered");
    }

    [Fact]
    public async Task A_self_registered_app_on_a_loopback_address_is_said_to_be_an_app_on_this_device()
    {
        var app = await RegisterItselfAsync("Desktop Agent", "http://127.0.0.1/callback");
        var page = await SignUpAsync("Dana Device");

        var (_, challenge) = NewPkce();
        await page.GotoAsync(AuthorizeUrl(app, "USE_TOOLS", challenge, redirectUri: "http://127.0.0.1:50123/callback"));

        var notice = page.Locator("#self-registered");
        await Assertions.Expect(notice).ToContainTextAsync("After you approve you will be sent to an app on this device (127.0.0.1:50123).");
        await BrowserFixture.AssertAccessibleAsync(page, "consent for an app on this device");
    }

    [Fact]
    public async Task A_name_stored_with_a_bidi_override_is_shown_without_it_on_the_consent_and_profile_pages()
    {
        var app = await RegisterItselfAsync("Harmless", AppRedirect);
        // The API refuses such a name now; a row stored before may still have one.
        const string stored = "Harmless\u202Egpj.exe";
        await server.WithDbAsync(db => db.OAuthApplications.Where(a => a.ClientId == app.ClientId)
            .ExecuteUpdateAsync(s => s.SetProperty(a => a.DisplayName, stored)));
        var page = await SignUpAsync("Bea Bidi");

        var arrived = await CatchRedirectAsync(page);
        var (_, challenge) = NewPkce();
        await page.GotoAsync(AuthorizeUrl(app, "IDENTITY", challenge));

        var name = page.Locator("h1 bdi#app-name");
        await Assertions.Expect(name).ToHaveTextAsync("Harmlessgpj.exe");
        Assert.DoesNotContain('\u202E', await page.Locator("main").InnerTextAsync());
        Assert.DoesNotContain('\u202E', await page.TitleAsync());

        // Approved, the app is listed among the authorized apps, also without the override.
        await page.GetByRole(AriaRole.Button, new() { Name = "Approve" }).ClickAsync();
        await arrived.Task.WaitAsync(TimeSpan.FromSeconds(15));
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Back at the app" })).ToBeVisibleAsync();
        await page.GotoAsync("/profile/authorized-apps");
        var card = page.Locator($"[data-client-id='{app.ClientId}']");
        await Assertions.Expect(card.Locator("h3 bdi")).ToHaveTextAsync("Harmlessgpj.exe");
        Assert.DoesNotContain('\u202E', await page.Locator("main").InnerTextAsync());
    }

    /// <summary>Registers a public client the way an MCP client does, with no account behind it.</summary>
    private async Task<RegisteredApp> RegisterItselfAsync(string name, string redirectUri)
    {
        var response = await server.CreateClient().PostAsJsonAsync("/api/oauth/register", new
        {
            client_name = name, redirect_uris = new[] { redirectUri }, token_endpoint_auth_method = "none",
        });
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, text);
        using var body = JsonDocument.Parse(text);
        return new RegisteredApp(body.RootElement.GetProperty("client_id").GetString()!, null, redirectUri);
    }

    private async Task<IPage> SignUpAsync(string name)
    {
        var page = await browser.NewPageAsync(server);
        await page.GotoAsync("/account/sign-up");
        await page.GetByLabel("E-mail address").FillAsync(TestAccounts.NewEmail());
        await page.GetByLabel("Your name").FillAsync(name);
        await page.GetByLabel("Password", new() { Exact = true }).FillAsync(TestAccounts.Password);
        await page.GetByLabel("Repeat the password").FillAsync(TestAccounts.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Create account" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Sign out" })).ToBeVisibleAsync();
        return page;
    }

    /// <summary>Answers the app's redirect in the browser (there is no app), and hands over the URL it was sent to.</summary>
    private static async Task<TaskCompletionSource<Uri>> CatchRedirectAsync(IPage page)
    {
        var arrived = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        await page.RouteAsync("https://app.example.com/**", async route =>
        {
            arrived.TrySetResult(new Uri(route.Request.Url));
            await route.FulfillAsync(new() { Status = 200, ContentType = "text/html", Body = "<!DOCTYPE html><title>App</title><main><h1>Back at the app</h1></main>" });
        });
        return arrived;
    }
}

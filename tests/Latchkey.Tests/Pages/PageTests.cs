using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using static Latchkey.Tests.Infrastructure.OAuthClient;

namespace Latchkey.Tests.Pages;

/// <summary>
/// The pages end to end in headless Chromium, as a person uses them: labels to find fields,
/// buttons to click, the keyboard where it matters. Each page is screenshotted at desktop and
/// phone widths (test-output/screenshots) and checked with axe-core.
/// </summary>
public sealed partial class PageTests(PageServer server, BrowserFixture browser) : IClassFixture<PageServer>, IClassFixture<BrowserFixture>
{
    private const string AppRedirect = "https://app.example.com/callback";

    private async Task<(IPage Page, string Email)> SignUpAsync(string name = "Ada Lovelace")
    {
        var page = await browser.NewPageAsync(server);
        var email = TestAccounts.NewEmail();
        await page.GotoAsync("/account/sign-up");
        await CreateAccountInFormAsync(page, email, name);
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Sign out" })).ToBeVisibleAsync();
        return (page, email);
    }

    private static async Task CreateAccountInFormAsync(IPage page, string email, string name)
    {
        await page.GetByLabel("E-mail address").FillAsync(email);
        await page.GetByLabel("Your name").FillAsync(name);
        await page.GetByLabel("Password", new() { Exact = true }).FillAsync(TestAccounts.Password);
        await page.GetByLabel("Repeat the password").FillAsync(TestAccounts.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Create account" }).ClickAsync();
    }

    private static async Task<RegisteredApp> RegisterAppInPageAsync(IPage page, string name)
    {
        await page.GotoAsync("/profile/oauth-apps");
        await page.GetByLabel("Name", new() { Exact = true }).FillAsync(name);
        await page.GetByLabel("Description (optional)").FillAsync("Plans your week from your calendar.");
        await page.GetByLabel("Homepage (optional)").FillAsync("https://app.example.com");
        await page.GetByLabel("Redirect URIs").FillAsync(AppRedirect);
        await page.GetByRole(AriaRole.Checkbox, new() { NameRegex = new Regex("^IDENTITY") }).CheckAsync();
        await page.GetByRole(AriaRole.Checkbox, new() { NameRegex = new Regex("^READ_GRAPH") }).CheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Register app" }).ClickAsync();
        var clientId = (await page.Locator("#client-id").TextContentAsync())!.Trim();
        var secret = (await page.Locator("#client-secret").TextContentAsync())!.Trim();
        Assert.StartsWith("lk_client_", clientId);
        Assert.StartsWith("lk_cs_", secret);
        return new RegisteredApp(clientId, secret, AppRedirect);
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

    /// <summary>The URL the app was sent to and its query, once the browser has finished loading the app's page (so the next navigation does not race it).</summary>
    private static async Task<(Uri Url, Dictionary<string, Microsoft.Extensions.Primitives.StringValues> Query)> BackAtTheAppAsync(IPage page, TaskCompletionSource<Uri> arrived)
    {
        var url = await arrived.Task.WaitAsync(TimeSpan.FromSeconds(15));
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Back at the app" })).ToBeVisibleAsync();
        return (url, Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(url.Query));
    }

    [Fact]
    public async Task Sign_up_register_an_app_approve_it_see_it_and_revoke_it()
    {
        var (ownerPage, _) = await SignUpAsync("Olivia Owner");
        var app = await RegisterAppInPageAsync(ownerPage, "Week Planner");
        await BrowserFixture.CaptureAndCheckAsync(ownerPage, "oauth-apps");

        // Someone else signs in through the app: the consent page, then Approve.
        var (page, _) = await SignUpAsync();
        var arrived = await CatchRedirectAsync(page);
        var (verifier, challenge) = NewPkce();
        await page.GotoAsync(AuthorizeUrl(app, "IDENTITY READ_GRAPH", challenge, state: "s-123"));
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Week Planner wants to access your account" })).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByText("Registered by Olivia Owner")).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByText("app.example.com", new() { Exact = true })).ToBeVisibleAsync();
        await BrowserFixture.CaptureAndCheckAsync(page, "consent");
        await page.GetByRole(AriaRole.Button, new() { Name = "Approve" }).ClickAsync();

        var (redirect, query) = await BackAtTheAppAsync(page, arrived);
        Assert.StartsWith(AppRedirect, redirect.AbsoluteUri);
        Assert.Equal("s-123", query["state"].ToString());
        var tokens = await RedeemCodeAsync(server.CreateClient(), app, query["code"].ToString(), verifier);
        var accessToken = tokens.GetProperty("access_token").GetString()!;
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(server.CreateClient(), accessToken)).StatusCode);

        // The app is listed with what it may do; revoking it stops the token at once.
        await page.GotoAsync("/profile/authorized-apps");
        var card = page.Locator($"[data-client-id='{app.ClientId}']");
        await Assertions.Expect(card.GetByRole(AriaRole.Heading, new() { Name = "Week Planner" })).ToBeVisibleAsync();
        await Assertions.Expect(card).ToContainTextAsync("READ_GRAPH");
        await BrowserFixture.CaptureAndCheckAsync(page, "authorized-apps");
        await card.GetByRole(AriaRole.Button, new() { Name = "Revoke access of Week Planner" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("can no longer access your account");
        await Assertions.Expect(page.Locator($"[data-client-id='{app.ClientId}']")).ToHaveCountAsync(0);
        Assert.Equal(HttpStatusCode.Unauthorized, (await CallMeAsync(server.CreateClient(), accessToken)).StatusCode);
    }

    [Fact]
    public async Task A_signed_out_user_signs_in_and_comes_back_to_the_consent_page_then_denies_with_the_keyboard()
    {
        var (ownerPage, _) = await SignUpAsync("Olivia Owner");
        var app = await RegisterAppInPageAsync(ownerPage, "Keyboard App");
        var (userPage, email) = await SignUpAsync("Kim Keys");
        await userPage.Context.CloseAsync();

        var page = await browser.NewPageAsync(server);
        var arrived = await CatchRedirectAsync(page);
        var (_, challenge) = NewPkce();
        await page.GotoAsync(AuthorizeUrl(app, "IDENTITY", challenge, state: "k"));
        await Assertions.Expect(page).ToHaveURLAsync(new Regex("/account/sign-in"));
        await BrowserFixture.CaptureAndCheckAsync(page, "sign-in");

        // Keyboard only: type into the focused fields, Tab between them, Enter to submit.
        await page.GetByLabel("E-mail address").FocusAsync();
        await page.Keyboard.TypeAsync(email);
        await page.Keyboard.PressAsync("Tab");
        await page.Keyboard.TypeAsync(TestAccounts.Password);
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Keyboard App wants to access your account" })).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByText("Signed in as")).ToContainTextAsync(email);

        await page.GetByRole(AriaRole.Button, new() { Name = "Deny" }).FocusAsync();
        await page.Keyboard.PressAsync("Enter");
        var (_, query) = await BackAtTheAppAsync(page, arrived);
        Assert.Equal("access_denied", query["error"].ToString());
        Assert.Equal("k", query["state"].ToString());
    }

    [Fact]
    public async Task An_api_key_is_created_with_scopes_shown_once_and_revoked()
    {
        var (page, _) = await SignUpAsync();
        await page.GotoAsync("/profile/api-keys");
        await BrowserFixture.CaptureAndCheckAsync(page, "api-keys-empty");

        // Missing name and scopes: the form says what is wrong, next to each field.
        await page.GetByRole(AriaRole.Button, new() { Name = "Create key" }).ClickAsync();
        await Assertions.Expect(page.Locator("#key-name-error")).ToContainTextAsync("Give the key a name");
        await Assertions.Expect(page.Locator("#key-scopes-error")).Not.ToBeEmptyAsync();

        await page.GetByLabel("Name", new() { Exact = true }).FillAsync("CI deploys");
        await page.GetByRole(AriaRole.Checkbox, new() { NameRegex = new Regex("^IDENTITY") }).CheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Create key" }).ClickAsync();
        var key = (await page.Locator("#new-key").TextContentAsync())!.Trim();
        Assert.StartsWith("lk_ak_", key);
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Copy" })).ToBeVisibleAsync();
        await BrowserFixture.CaptureAndCheckAsync(page, "api-keys-created");

        var client = server.CreateClient();
        client.DefaultRequestHeaders.Add("X-API-Key", key);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/external-api/v1/me")).StatusCode);

        // Shown once: the list shows only its prefix from now on.
        await page.GotoAsync("/profile/api-keys");
        Assert.DoesNotContain(key, await page.ContentAsync());
        var card = page.Locator("li.card", new() { HasText = "CI deploys" });
        await Assertions.Expect(card).ToContainTextAsync("IDENTITY");
        await Assertions.Expect(card).ToContainTextAsync("last used");

        await card.GetByRole(AriaRole.Button, new() { Name = "Revoke CI deploys" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Revoked “CI deploys”");
        await Assertions.Expect(page.Locator("li.card", new() { HasText = "CI deploys" })).ToHaveCountAsync(0);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/external-api/v1/me")).StatusCode);
    }

    [Fact]
    public async Task An_owner_edits_an_app_uploads_a_logo_rotates_its_secret_disables_and_deletes_it()
    {
        var (page, _) = await SignUpAsync("Olivia Owner");
        var app = await RegisterAppInPageAsync(page, "Edited App");

        await page.GetByRole(AriaRole.Link, new() { Name = "Edit Edited App" }).ClickAsync();
        await page.GetByLabel("Name", new() { Exact = true }).FillAsync("Renamed App");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save changes" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Edit Renamed App" })).ToBeVisibleAsync();
        await page.GetByLabel("Image file").SetInputFilesAsync(new FilePayload
        {
            Name = "logo.svg",
            MimeType = "image/svg+xml",
            Buffer = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 10 10\"><rect width=\"10\" height=\"10\" fill=\"#0b5cad\"/></svg>"u8.ToArray(),
        });
        await page.GetByRole(AriaRole.Button, new() { Name = "Upload logo" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("The new logo is saved");
        await Assertions.Expect(page.GetByAltText("Current logo of Renamed App")).ToBeVisibleAsync();
        await BrowserFixture.CaptureAndCheckAsync(page, "oauth-app-edit");

        await page.GotoAsync("/profile/oauth-apps");
        var card = page.Locator($"[data-client-id='{app.ClientId}']");
        await card.GetByRole(AriaRole.Button, new() { Name = "New client secret for Renamed App" }).ClickAsync();
        var newSecret = (await page.Locator("#client-secret").TextContentAsync())!.Trim();
        Assert.NotEqual(app.ClientSecret, newSecret);

        async Task<HttpStatusCode> ClientCredentialsAsync(string secret) => (await TokenAsync(server.CreateClient(), new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = app.ClientId, ["client_secret"] = secret, ["scope"] = "READ_GRAPH",
        })).StatusCode;
        Assert.NotEqual(HttpStatusCode.OK, await ClientCredentialsAsync(app.ClientSecret!));
        Assert.Equal(HttpStatusCode.OK, await ClientCredentialsAsync(newSecret));

        await page.Locator($"[data-client-id='{app.ClientId}']").GetByRole(AriaRole.Button, new() { Name = "Disable Renamed App" }).ClickAsync();
        await Assertions.Expect(page.Locator($"[data-client-id='{app.ClientId}']")).ToContainTextAsync("disabled");
        Assert.NotEqual(HttpStatusCode.OK, await ClientCredentialsAsync(newSecret));

        card = page.Locator($"[data-client-id='{app.ClientId}']");
        await card.GetByText("Delete…").ClickAsync();
        await card.GetByRole(AriaRole.Button, new() { Name = "Delete Renamed App for good" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Deleted Renamed App");
        await Assertions.Expect(page.Locator($"[data-client-id='{app.ClientId}']")).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task The_public_pages_are_accessible_and_profile_pages_need_a_session()
    {
        var page = await browser.NewPageAsync(server);
        await page.GotoAsync("/");
        await BrowserFixture.CaptureAndCheckAsync(page, "home");
        await page.GotoAsync("/account/sign-up");
        await BrowserFixture.CaptureAndCheckAsync(page, "sign-up");

        foreach (var path in new[] { "/profile/api-keys", "/profile/oauth-apps", "/profile/authorized-apps" })
        {
            await page.GotoAsync(path);
            await Assertions.Expect(page).ToHaveURLAsync(new Regex("/account/sign-in\\?ReturnUrl="));
        }

        // The first Tab reaches the skip link, which moves focus to the content.
        await page.Keyboard.PressAsync("Tab");
        Assert.Equal("Skip to content", await page.EvaluateAsync<string>("document.activeElement.textContent"));
    }

    [Fact]
    public async Task A_forgotten_password_is_reset_through_the_e_mailed_link_once()
    {
        var (page, email) = await SignUpAsync("Fay Forgetful");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await page.GotoAsync("/account/sign-in");
        await page.GetByRole(AriaRole.Link, new() { Name = "Forgot your password?" }).ClickAsync();
        await page.GetByLabel("E-mail address").FillAsync(email);
        await page.GetByRole(AriaRole.Button, new() { Name = "Send reset link" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("we sent it a link");
        await BrowserFixture.CaptureAndCheckAsync(page, "forgot-password");

        // An unknown address gets the very same answer, and no e-mail.
        await page.GotoAsync("/account/forgot-password");
        await page.GetByLabel("E-mail address").FillAsync("nobody-" + email);
        await page.GetByRole(AriaRole.Button, new() { Name = "Send reset link" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("we sent it a link");
        Assert.Empty(server.Emails.To("nobody-" + email));

        var sent = Assert.Single(server.Emails.To(email), e => e.Subject == "Reset your Latchkey password");
        var link = ResetLink().Match(sent.Body).Value;
        Assert.StartsWith(server.BaseAddress.AbsoluteUri.TrimEnd('/') + "/account/reset-password?", link);
        await page.GotoAsync(link);
        await page.GetByLabel("New password", new() { Exact = true }).FillAsync("a brand new pass phrase");
        await page.GetByLabel("Repeat the new password").FillAsync("a brand new pass phrase");
        await BrowserFixture.CaptureAndCheckAsync(page, "reset-password");
        await page.GetByRole(AriaRole.Button, new() { Name = "Change password" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Your password is changed");

        await page.GotoAsync("/account/sign-in");
        await page.GetByLabel("E-mail address").FillAsync(email);
        await page.GetByLabel("Password").FillAsync("a brand new pass phrase");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Sign out" })).ToBeVisibleAsync();

        // The link works once.
        await page.GotoAsync(link);
        await page.GetByLabel("New password", new() { Exact = true }).FillAsync("yet another pass phrase");
        await page.GetByLabel("Repeat the new password").FillAsync("yet another pass phrase");
        await page.GetByRole(AriaRole.Button, new() { Name = "Change password" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Alert).First).ToContainTextAsync("expired or was already used");
    }

    [Fact]
    public async Task Errors_get_a_page_that_says_what_to_do_and_programs_still_get_problem_details()
    {
        var page = await browser.NewPageAsync(server);
        var response = await page.GotoAsync("/no/such/page");
        Assert.Equal(404, response!.Status);
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "This page does not exist" })).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = "Go to the start page" })).ToBeVisibleAsync();
        Assert.DoesNotContain("Exception", await page.ContentAsync());
        await BrowserFixture.CaptureAndCheckAsync(page, "error-404");

        var (owner, _) = await SignUpAsync();
        response = await owner.GotoAsync("/profile/oauth-apps/lk_client_not_mine");
        Assert.Equal(404, response!.Status);
        await Assertions.Expect(owner.GetByRole(AriaRole.Heading, new() { Name = "This page does not exist" })).ToBeVisibleAsync();

        var api = await server.CreateClient().GetAsync("/no/such/page");
        Assert.Equal(HttpStatusCode.NotFound, api.StatusCode);
        Assert.Equal("application/problem+json", api.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task A_new_account_confirms_its_address_with_the_button_behind_the_emailed_link()
    {
        var (page, email) = await SignUpAsync("Cleo Confirm");
        var sent = Assert.Single(server.Emails.To(email), e => e.Subject == "Confirm your e-mail address for Latchkey");
        Assert.NotNull(sent.HtmlBody);

        await page.GotoAsync(ConfirmLink().Match(sent.Body).Value);
        await BrowserFixture.CaptureAndCheckAsync(page, "confirm-email");
        await page.GetByRole(AriaRole.Button, new() { Name = "Confirm my address" }).ClickAsync();

        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Your e-mail address is confirmed");
        Assert.True(await server.WithDbAsync(db => db.Users.Where(u => u.Email == email).Select(u => u.EmailConfirmed).SingleAsync()));
    }

    [GeneratedRegex(@"https?://\S+/account/confirm-email\?\S+")]
    private static partial Regex ConfirmLink();

    [GeneratedRegex(@"https?://\S+/account/reset-password\?\S+")]
    private static partial Regex ResetLink();

    [Fact]
    public async Task A_connection_is_made_reconnected_when_it_needs_it_and_disconnected()
    {
        await using var provider = await TestOAuthProvider.StartAsync();
        var (page, email) = await SignUpAsync("Connie Connector");
        var userId = await AddTestProviderAsync(email, provider);

        await page.GotoAsync("/profile/connections");
        await page.GetByRole(AriaRole.Button, new() { Name = "Connect Test provider" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Connected.");
        var card = page.Locator("li.card[data-credential-id]");
        await Assertions.Expect(card).ToHaveCountAsync(1);
        await Assertions.Expect(card).ToContainTextAsync("connected");
        var firstId = await card.GetAttributeAsync("data-credential-id");
        Assert.Equal(1, await server.WithDbAsync(db => db.BrokerCredentials.CountAsync(c => c.AccountId == userId)));

        // The provider stopped accepting it: the page says so, and Reconnect replaces it.
        await server.WithDbAsync(db => db.BrokerCredentials.Where(c => c.Id == firstId)
            .ExecuteUpdateAsync(s => s.SetProperty(c => c.Status, "needs_reauth")));
        await page.ReloadAsync();
        await Assertions.Expect(card).ToContainTextAsync("needs reconnecting");
        await BrowserFixture.CaptureAndCheckAsync(page, "connections");
        await card.GetByRole(AriaRole.Button, new() { NameRegex = new Regex("^Reconnect") }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Connected.");
        await Assertions.Expect(card).ToHaveCountAsync(1);
        await Assertions.Expect(card).ToContainTextAsync("connected");
        Assert.NotEqual(firstId, await card.GetAttributeAsync("data-credential-id"));

        await card.GetByRole(AriaRole.Button, new() { NameRegex = new Regex("^Disconnect") }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Disconnected");
        await Assertions.Expect(page.Locator("li.card[data-credential-id]")).ToHaveCountAsync(0);
        Assert.Equal(0, await server.WithDbAsync(db => db.BrokerCredentials.CountAsync(c => c.AccountId == userId)));
        Assert.NotEmpty(provider.Revoked);
    }

    [Fact]
    public async Task A_tool_set_to_wait_for_approval_on_the_connections_page_holds_an_agents_call_until_approved_on_the_approvals_page()
    {
        await using var upstream = await TestMcpUpstream.StartAsync();
        var (page, email) = await SignUpAsync("Paula Policy");
        var userId = await server.WithDbAsync(db => db.Users.Where(u => u.Email == email).Select(u => u.Id).SingleAsync());
        string key;
        await using (var scope = server.Services.CreateAsyncScope())
        {
            var (created, _) = await scope.ServiceProvider.GetRequiredService<Latchkey.Features.ApiKeys.ApiKeyService>()
                .CreateAsync(userId, "agent", ["IDENTITY", "USE_TOOLS"], null, CancellationToken.None);
            key = created!.Secret;
        }
        var api = server.CreateClient();
        api.DefaultRequestHeaders.Add("X-API-Key", key);
        var registered = await api.PostAsJsonAsync("/mcp/servers", new { name = "Repo tools", url = upstream.Endpoint.AbsoluteUri });
        Assert.Equal(HttpStatusCode.Created, registered.StatusCode);
        var gateway = new Uri((await registered.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>()).GetProperty("gateway_url").GetString()!);

        // The owner holds delete_repo for approval on the connections page.
        await page.GotoAsync("/profile/connections");
        var card = page.Locator("li.card[data-server-id]");
        await card.GetByLabel("Tool or pattern").FillAsync("delete_repo");
        await card.GetByLabel("Policy", new() { Exact = true }).SelectOptionAsync("require_approval");
        await card.GetByRole(AriaRole.Button, new() { Name = "Set policy on Repo tools" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("delete_repo is now require approval");
        await Assertions.Expect(card.Locator("li[data-tool='delete_repo']")).ToContainTextAsync("require approval");
        await BrowserFixture.CaptureAndCheckAsync(page, "tool-policies");

        // An agent's call waits; the approvals page shows what it is.
        await using var agent = await McpAgents.ConnectAsync(gateway, key);
        var call = agent.CallToolAsync("delete_repo", new Dictionary<string, object?> { ["repo"] = "latchkey/old" }).AsTask();
        var held = page.Locator("li.card[data-approval-id][id]");
        await Eventually.TrueAsync(async () =>
        {
            await page.GotoAsync("/profile/approvals");
            return await held.CountAsync() == 1;
        }, TimeSpan.FromSeconds(15), "the held call to appear");
        await Assertions.Expect(held).ToContainTextAsync("delete_repo");
        await Assertions.Expect(held).ToContainTextAsync("Repo tools");
        await Assertions.Expect(held).ToContainTextAsync("latchkey/old");
        await Assertions.Expect(held).ToContainTextAsync("left to decide");
        await Assertions.Expect(held).ToContainTextAsync("by API key “agent”");
        await BrowserFixture.CaptureAndCheckAsync(page, "approvals");
        Assert.False(call.IsCompleted);
        Assert.Empty(upstream.CallsOf("delete_repo"));

        await held.GetByRole(AriaRole.Button, new() { Name = "Approve once the call of delete_repo" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Approved: delete_repo on Repo tools.");
        var result = await call.WaitAsync(TimeSpan.FromSeconds(15));
        Assert.StartsWith("deleted latchkey/old", Assert.IsType<ModelContextProtocol.Protocol.TextContentBlock>(result.Content.Single()).Text);
        Assert.Single(upstream.CallsOf("delete_repo"));
        await page.ReloadAsync();
        await Assertions.Expect(page.Locator("li.card[data-status]")).ToContainTextAsync("approved once");
    }

    /// <summary>Adds the loopback test provider as the user's own custom provider (through the broker API); returns the user's id.</summary>
    private async Task<string> AddTestProviderAsync(string email, TestOAuthProvider provider)
    {
        var userId = await server.WithDbAsync(db => db.Users.Where(u => u.Email == email).Select(u => u.Id).SingleAsync());
        string key;
        await using (var scope = server.Services.CreateAsyncScope())
        {
            var (created, _) = await scope.ServiceProvider.GetRequiredService<Latchkey.Features.ApiKeys.ApiKeyService>()
                .CreateAsync(userId, "provider setup", ["IDENTITY"], null, CancellationToken.None);
            key = created!.Secret;
        }
        var api = server.CreateClient();
        api.DefaultRequestHeaders.Add("X-API-Key", key);
        var added = await api.PostAsJsonAsync("/mcp/providers", new
        {
            provider = "custom", client_id = TestOAuthProvider.ClientId, client_secret = TestOAuthProvider.ClientSecret, custom = provider.Definition(),
        });
        Assert.Equal(HttpStatusCode.Created, added.StatusCode);
        return userId;
    }

    private static string WizardUrl(string clientId, string providersJson, string redirectUri, string state) =>
        Microsoft.AspNetCore.WebUtilities.QueryHelpers.AddQueryString("/auth/integrations/setup-wizard", new Dictionary<string, string?>
        {
            ["client_id"] = clientId,
            ["providers"] = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(providersJson)),
            ["redirect_uri"] = redirectUri,
            ["state"] = state,
        });

    [Fact]
    public async Task The_setup_wizard_connects_each_provider_and_returns_to_the_app()
    {
        await using var provider = await TestOAuthProvider.StartAsync();
        var (ownerPage, _) = await SignUpAsync("Olivia Owner");
        var app = await RegisterAppInPageAsync(ownerPage, "Agent Studio");
        var (page, email) = await SignUpAsync("Wendy Wizard");
        await AddTestProviderAsync(email, provider);
        var arrived = await CatchRedirectAsync(page);

        await page.GotoAsync(WizardUrl(app.ClientId, """[{"provider":"custom","scopes":["read"]}]""", AppRedirect, "w-1"));
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Connect your accounts for Agent Studio" })).ToBeVisibleAsync();
        var step = page.Locator("li[data-provider='custom']");
        await Assertions.Expect(step).ToContainTextAsync("not connected yet");
        await BrowserFixture.CaptureAndCheckAsync(page, "setup-wizard");

        await step.GetByRole(AriaRole.Button, new() { Name = "Connect Test provider" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Connected.");
        await Assertions.Expect(step).ToContainTextAsync("connected as octo-tester");
        await BrowserFixture.CaptureAndCheckAsync(page, "setup-wizard-done");

        await page.GetByRole(AriaRole.Button, new() { Name = "Done: return to Agent Studio" }).ClickAsync();
        var (_, query) = await BackAtTheAppAsync(page, arrived);
        Assert.Equal("true", query["success"].ToString());
        Assert.Equal("w-1", query["state"].ToString());
    }

    [Fact]
    public async Task The_setup_wizard_refuses_unregistered_return_urls_and_reports_failure_to_the_app()
    {
        var (ownerPage, _) = await SignUpAsync("Olivia Owner");
        var app = await RegisterAppInPageAsync(ownerPage, "Picky App");
        var (page, _) = await SignUpAsync("Una User");

        var response = await page.GotoAsync(WizardUrl(app.ClientId, """[{"provider":"github"}]""", "https://evil.example.net/steal", "x"));
        Assert.Equal(400, response!.Status);
        await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("has not registered");
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { NameRegex = new Regex("^Return to") })).ToHaveCountAsync(0);

        // A provider that is not set up here: the user can only go back, and the app hears success=false.
        var arrived = await CatchRedirectAsync(page);
        await page.GotoAsync(WizardUrl(app.ClientId, """[{"provider":"github","scopes":["repo"]}]""", AppRedirect, "x-2"));
        await Assertions.Expect(page.Locator("li[data-provider='github']")).ToContainTextAsync("not available here");
        await page.GetByRole(AriaRole.Button, new() { Name = "Return to Picky App without finishing" }).ClickAsync();
        var (_, query) = await BackAtTheAppAsync(page, arrived);
        Assert.Equal("false", query["success"].ToString());
        Assert.Equal("x-2", query["state"].ToString());
    }

    [Fact]
    public async Task A_new_user_creates_an_account_from_the_consent_page_and_comes_back_to_it()
    {
        var (ownerPage, _) = await SignUpAsync("Olivia Owner");
        var app = await RegisterAppInPageAsync(ownerPage, "Newcomer App");

        var page = await browser.NewPageAsync(server);
        var (_, challenge) = NewPkce();
        await page.GotoAsync(AuthorizeUrl(app, "IDENTITY", challenge));
        await page.GetByRole(AriaRole.Link, new() { Name = "Create an account" }).ClickAsync();
        await CreateAccountInFormAsync(page, TestAccounts.NewEmail(), "Nina Newcomer");

        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Newcomer App wants to access your account" })).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByText("Signed in as")).ToContainTextAsync("Nina Newcomer");
    }

    [Fact]
    public async Task A_device_code_is_typed_on_the_device_page_approved_and_the_device_signs_in()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var created = await owner.Session.PostAsJsonAsync("/api/oauth/apps", new
        {
            name = "Terminal Agent",
            scopes = new[] { "IDENTITY" },
            confidential = false,
            grant_types = new[] { Duende.IdentityModel.OidcConstants.GrantTypes.DeviceCode },
        });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var clientId = (await created.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>()).GetProperty("app").GetProperty("client_id").GetString()!;
        var device = server.CreateClient();
        var authorization = await Duende.IdentityModel.Client.HttpClientDeviceFlowExtensions.RequestDeviceAuthorizationAsync(device,
            new Duende.IdentityModel.Client.DeviceAuthorizationRequest { Address = new Uri(server.BaseAddress, "/api/oauth/device").AbsoluteUri, ClientId = clientId, Scope = "IDENTITY" });
        Assert.False(authorization.IsError, authorization.Error);
        var (page, _) = await SignUpAsync("Dev Ice");

        // The person types the code their terminal shows, in whatever case.
        await page.GotoAsync("/device");
        await BrowserFixture.CaptureAndCheckAsync(page, "device-code");
        await page.GetByLabel("Code").FillAsync(authorization.UserCode!.ToLowerInvariant());
        await page.GetByRole(AriaRole.Button, new() { Name = "Continue" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Terminal Agent wants to access your account from a device" })).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#device-warning")).ToContainTextAsync(authorization.UserCode!);
        await BrowserFixture.CaptureAndCheckAsync(page, "device-consent");
        await page.GetByRole(AriaRole.Button, new() { Name = "Approve" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Your device is connected" })).ToBeVisibleAsync();
        await BrowserFixture.CaptureAndCheckAsync(page, "device-connected");

        var tokens = await Duende.IdentityModel.Client.HttpClientTokenRequestExtensions.RequestDeviceTokenAsync(device, new Duende.IdentityModel.Client.DeviceTokenRequest
        {
            Address = new Uri(server.BaseAddress, "/api/oauth/token").AbsoluteUri,
            ClientId = clientId,
            DeviceCode = authorization.DeviceCode!,
            ClientCredentialStyle = Duende.IdentityModel.Client.ClientCredentialStyle.PostBody,
        });
        Assert.False(tokens.IsError, $"{tokens.Error} {tokens.ErrorDescription}");
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(device, tokens.AccessToken!)).StatusCode);
    }

    [Fact]
    public async Task The_consent_page_does_not_render_inside_another_sites_frame()
    {
        var (ownerPage, _) = await SignUpAsync("Olivia Owner");
        var app = await RegisterAppInPageAsync(ownerPage, "Framed App");
        var (page, _) = await SignUpAsync("Fay Framed");
        var (_, challenge) = NewPkce();
        var consent = new Uri(server.BaseAddress, AuthorizeUrl(app, "IDENTITY", challenge)).AbsoluteUri;
        // The attacker's page, on another origin: the consent page in a frame, under something that
        // invites a click; beside it, as a control, a response that may be framed (JSON, no page).
        // Both hosts are 127.0.0.1, so the frame is same-site and the browser would even send the
        // session cookie (SameSite=Lax): the worst case, a signed-in consent page ready to approve.
        var control = new Uri(server.BaseAddress, "/healthz").AbsoluteUri;
        await using var attacker = await AttackerSite.StartAsync(
            "<!DOCTYPE html><title>Win a prize</title><h1>Click to win</h1>" +
            $"<iframe id=\"victim\" src=\"{System.Net.WebUtility.HtmlEncode(consent)}\" width=\"800\" height=\"600\"></iframe>" +
            $"<iframe id=\"control\" src=\"{System.Net.WebUtility.HtmlEncode(control)}\"></iframe>");

        // GotoAsync waits for the load event, which waits for both frames.
        await page.GotoAsync(attacker.Address.AbsoluteUri);
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Click to win" })).ToBeVisibleAsync();
        var shown = await (await page.QuerySelectorAsync("#control"))!.ContentFrameAsync();
        Assert.True(shown?.Url == control, $"The control frame shows {shown?.Url}");
        Assert.Contains("Healthy", await shown!.ContentAsync());

        // Chromium refuses the consent frame (frame-ancestors 'none'; X-Frame-Options: DENY): it
        // shows its own error page in its place, with nothing of Latchkey's to click.
        var victim = await (await page.QuerySelectorAsync("#victim"))!.ContentFrameAsync();
        Assert.NotNull(victim);
        Assert.StartsWith("chrome-error://", victim.Url);
        Assert.Equal(0, await victim.GetByRole(AriaRole.Button, new() { Name = "Approve" }).CountAsync());
        Assert.DoesNotContain("Framed App", await victim.ContentAsync());

        // The same page, opened directly, renders.
        await page.GotoAsync(consent);
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Approve" })).ToBeVisibleAsync();
    }

    [Fact]
    public async Task A_script_injected_into_a_page_does_not_run_and_the_refusal_is_reported()
    {
        var page = await browser.NewPageAsync(server);
        await page.GotoAsync("/account/sign-in");

        // What an injection flaw would add: an inline script, and an image that carries data away.
        await page.EvaluateAsync("""
            () => {
              const script = document.createElement('script');
              script.textContent = 'window.injected = true';
              document.body.appendChild(script);
              const image = document.createElement('img');
              image.src = 'https://collector.example/leak.png';
              document.body.appendChild(image);
            }
            """);

        await Eventually.TrueAsync(() => BrowserFixture.PolicyViolationsOf(page).Count >= 2, TimeSpan.FromSeconds(10), "Chromium reports both refusals");
        Assert.False(await page.EvaluateAsync<bool>("() => window.injected === true"));
        var violations = BrowserFixture.PolicyViolationsOf(page);
        Assert.Contains(violations, v => v.Contains("script-src"));
        Assert.Contains(violations, v => v.Contains("img-src") && v.Contains("collector.example"));
    }

    [Fact]
    public async Task The_api_reference_renders_under_its_policy_with_only_the_known_eval_probe_refused()
    {
        var page = await browser.NewPageAsync(server);
        await page.GotoAsync("/docs/");
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Latchkey API" }).First).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByText("The scope catalog").First).ToBeVisibleAsync();
        Assert.Equal("Latchkey API", await page.TitleAsync());
        // Latchkey's reference, not an advert: nothing links to or names the library's vendor.
        Assert.Equal(0, await page.Locator("a[href*='scalar'] >> visible=true").CountAsync());
        Assert.Equal(0, await page.Locator("text=Scalar >> visible=true").CountAsync());

        // Scalar's bundle (its Zod schemas) probes once whether eval is allowed, and works without it.
        var unexpected = BrowserFixture.PolicyViolationsOf(page).Where(v => !v.Contains("'unsafe-eval'")).ToList();
        Assert.True(unexpected.Count == 0, string.Join("\n", unexpected));
    }
}

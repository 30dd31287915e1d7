using System.Net;
using System.Text.RegularExpressions;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;

namespace Latchkey.Tests.Pages;

/// <summary>
/// The admin pages in headless Chromium, as an operator uses them, each checked with axe-core at
/// desktop and phone widths. The admin role comes from the CLI, as it does in production.
/// </summary>
public sealed class AdminPageTests(PageServer server, BrowserFixture browser) : IClassFixture<PageServer>, IClassFixture<BrowserFixture>
{
    /// <summary>A signed-in browser page of a new account (signed up through the form).</summary>
    private async Task<(IPage Page, string Email)> SignedInAsync(string name)
    {
        var page = await browser.NewPageAsync(server);
        var email = TestAccounts.NewEmail();
        await page.GotoAsync("/account/sign-up");
        await page.GetByLabel("E-mail address").FillAsync(email);
        await page.GetByLabel("Your name").FillAsync(name);
        await page.GetByLabel("Password", new() { Exact = true }).FillAsync(TestAccounts.Password);
        await page.GetByLabel("Repeat the password").FillAsync(TestAccounts.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Create account" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Sign out" })).ToBeVisibleAsync();
        return (page, email);
    }

    private static async Task SignInAsync(IPage page, string email, string password)
    {
        await page.GotoAsync("/account/sign-in");
        await page.GetByLabel("E-mail address").FillAsync(email);
        await page.GetByLabel("Password").FillAsync(password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Sign out" })).ToBeVisibleAsync();
    }

    /// <summary>An administrator's browser: signed up, given the role with the CLI, signed in again (the role change ended the session).</summary>
    private async Task<(IPage Page, string Email)> AdminAsync()
    {
        var (page, email) = await SignedInAsync("Ada Admin");
        var granted = await server.RunCliAsync(["users", "grant-admin", email]);
        Assert.True(granted.ExitCode == 0, granted.Error);
        await ExpectSignedOutAsync(page);
        await SignInAsync(page, email, TestAccounts.Password);
        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = "Admin" })).ToBeVisibleAsync();
        return (page, email);
    }

    /// <summary>The session has ended: a profile page sends the browser to sign in. A change made by the CLI reaches the server through the change feed (polled four times a second), so this asks again for a while.</summary>
    private static async Task ExpectSignedOutAsync(IPage page) =>
        await Eventually.TrueAsync(async () =>
        {
            await page.GotoAsync("/profile/api-keys");
            return page.Url.Contains("/account/sign-in", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(5), "the session ended");

    [Fact]
    public async Task An_admin_finds_an_account_disables_it_resets_its_password_signs_it_out_and_deletes_it()
    {
        var (userPage, userEmail) = await SignedInAsync("Tess Target");
        var (page, _) = await AdminAsync();

        await page.GetByRole(AriaRole.Link, new() { Name = "Admin" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Administration" })).ToBeVisibleAsync();
        await BrowserFixture.CaptureAndCheckAsync(page, "admin-overview");
        // What an admin page shows stays out of every cache (the layout's sign-out form makes antiforgery say so).
        Assert.Contains("no-store", (await page.GotoAsync("/admin"))!.Headers["cache-control"]);

        await page.GetByRole(AriaRole.Navigation, new() { Name = "Administration" }).GetByRole(AriaRole.Link, new() { Name = "Users" }).ClickAsync();
        await page.GetByLabel("E-mail address or name contains").FillAsync("tess target");
        await page.GetByRole(AriaRole.Button, new() { Name = "Search" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Row)).ToHaveCountAsync(2);
        await BrowserFixture.CaptureAndCheckAsync(page, "admin-users");
        await page.GetByRole(AriaRole.Link, new() { Name = userEmail }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = userEmail })).ToBeVisibleAsync();
        await BrowserFixture.CaptureAndCheckAsync(page, "admin-user");

        // Disable: the person's session ends at its next request; enable brings the account back.
        await page.GetByRole(AriaRole.Button, new() { Name = "Disable account" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("is disabled");
        await Assertions.Expect(page.Locator("dl.facts")).ToContainTextAsync("disabled");
        await ExpectSignedOutAsync(userPage);
        await page.GetByRole(AriaRole.Button, new() { Name = "Enable account" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("is enabled");

        // A new password, shown once, works; the old one does not.
        await page.GetByRole(AriaRole.Button, new() { Name = "Set a new password" }).ClickAsync();
        var password = (await page.Locator("#new-password").TextContentAsync())!.Trim();
        Assert.Equal(24, password.Length);
        await SignInAsync(userPage, userEmail, password);
        await page.GotoAsync($"/admin/users?q={Uri.EscapeDataString(userEmail)}");
        await page.GetByRole(AriaRole.Link, new() { Name = userEmail }).ClickAsync();
        await Assertions.Expect(page.Locator("#new-password")).ToHaveCountAsync(0);

        // Sign out everywhere.
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out everywhere" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("has ended");
        await ExpectSignedOutAsync(userPage);
        // Recorded in the account's security log (written off the request path), naming who did it.
        await Eventually.TrueAsync(async () => await server.WithDbAsync(db => db.SecurityEvents.CountAsync(e => e.Type == "sessions_ended"
            && e.AccountId == db.Users.Where(u => u.Email == userEmail).Select(u => u.Id).Single() && e.Detail!.Contains("admin pages"))) == 1,
            TimeSpan.FromSeconds(5), "sessions_ended recorded");

        // Delete: what goes is listed first, and the address must be typed.
        await page.GetByRole(AriaRole.Link, new() { Name = "Delete account…" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.List, new() { Name = "What deleting removes" })).ToContainTextAsync("0 API key(s)");
        await BrowserFixture.CaptureAndCheckAsync(page, "admin-delete-user");
        await page.GetByLabel("Type the account's e-mail address to confirm").FillAsync("someone-else@example.com");
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete account" }).ClickAsync();
        await Assertions.Expect(page.Locator("#confirm-email-error")).ToContainTextAsync("nothing was deleted");
        Assert.Equal(1, await server.WithDbAsync(db => db.Users.CountAsync(u => u.Email == userEmail)));
        await page.GetByLabel("Type the account's e-mail address to confirm").FillAsync(userEmail);
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete account" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync($"{userEmail} is deleted");
        Assert.Equal(0, await server.WithDbAsync(db => db.Users.CountAsync(u => u.Email == userEmail)));
    }

    [Fact]
    public async Task An_admin_cannot_disable_or_delete_their_own_account_from_the_pages()
    {
        var (page, email) = await AdminAsync();
        var id = await server.WithDbAsync(db => db.Users.Where(u => u.Email == email).Select(u => u.Id).SingleAsync());

        await page.GotoAsync($"/admin/users/{id}");

        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Disable account" })).ToHaveCountAsync(0);
        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = "Delete account…" })).ToHaveCountAsync(0);
        await page.GotoAsync($"/admin/users/{id}/delete");
        await page.GetByLabel("Type the account's e-mail address to confirm").FillAsync(email);
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete account" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("cannot delete your own account");
        Assert.Equal(1, await server.WithDbAsync(db => db.Users.CountAsync(u => u.Id == id)));
    }

    /// <summary>Not an admin page, but the other side of deletion: the account's own (<c>/profile/account</c>).</summary>
    [Fact]
    public async Task A_person_downloads_their_data_and_deletes_their_own_account_with_their_password()
    {
        var (page, email) = await SignedInAsync("Dora Departing");

        await page.GetByRole(AriaRole.Link, new() { Name = "Your account" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.List, new() { Name = "What deleting removes" })).ToContainTextAsync("0 API key(s)");
        await BrowserFixture.CaptureAndCheckAsync(page, "account");
        var download = await page.RunAndWaitForDownloadAsync(() => page.GetByRole(AriaRole.Link, new() { Name = "Download your data (JSON)" }).ClickAsync());
        Assert.EndsWith(".json", download.SuggestedFilename);
        Assert.Contains(email, await File.ReadAllTextAsync((await download.PathAsync())!));

        await page.GetByLabel("Your password, to confirm").FillAsync("not the password");
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete my account" }).ClickAsync();
        await Assertions.Expect(page.Locator("#delete-password-error")).ToContainTextAsync("nothing was deleted");
        await page.GetByLabel("Your password, to confirm").FillAsync(TestAccounts.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete my account" }).ClickAsync();

        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Your account is deleted" })).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = "Sign in", Exact = true })).ToBeVisibleAsync();
        Assert.Equal(0, await server.WithDbAsync(db => db.Users.CountAsync(u => u.Email == email)));
    }

    [Fact]
    public async Task Someone_without_the_admin_role_gets_403_and_no_admin_link()
    {
        var (page, _) = await SignedInAsync("Nora Normal");

        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = "Admin" })).ToHaveCountAsync(0);
        var response = await page.GotoAsync("/admin/users");

        Assert.Equal((int)HttpStatusCode.Forbidden, response!.Status);
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "You may not open this page" })).ToBeVisibleAsync();
        // Signed out: the sign-in page.
        var anonymous = await browser.NewPageAsync(server);
        await anonymous.GotoAsync("/admin");
        await Assertions.Expect(anonymous).ToHaveURLAsync(new Regex("/account/sign-in"));
    }

    [Fact]
    public async Task An_admin_reviews_apps_disables_one_and_reads_credentials_and_the_security_log()
    {
        var issued = await OAuthClient.IssueAsync(server);
        var (page, _) = await AdminAsync();

        await page.GotoAsync("/admin/apps");
        var row = page.Locator($"tr[data-client-id='{issued.App.ClientId}']");
        await Assertions.Expect(row).ToContainTextAsync(issued.Owner.Email);
        await Assertions.Expect(row.Locator("td.number").First).Not.ToHaveTextAsync("0");
        await BrowserFixture.CaptureAndCheckAsync(page, "admin-apps");
        await row.GetByRole(AriaRole.Button, new() { NameRegex = new Regex("^Disable") }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("is disabled");
        await Assertions.Expect(page.Locator($"tr[data-client-id='{issued.App.ClientId}']")).ToContainTextAsync("disabled");
        Assert.Equal(HttpStatusCode.Unauthorized, (await OAuthClient.CallMeAsync(server.CreateClient(), issued.AccessToken)).StatusCode);

        await page.GotoAsync("/admin/credentials");
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Credentials by provider" })).ToBeVisibleAsync();
        await BrowserFixture.CaptureAndCheckAsync(page, "admin-credentials");

        await page.GotoAsync("/admin/security-log");
        await page.GetByLabel("Account (e-mail address or id)").FillAsync(issued.User.Email);
        await page.GetByLabel("Event").SelectOptionAsync(new SelectOptionValue { Value = "consent_granted" });
        await page.GetByRole(AriaRole.Button, new() { Name = "Show" }).ClickAsync();
        await Assertions.Expect(page.Locator("tr[data-event-type='consent_granted']")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("tbody tr")).ToHaveCountAsync(1);
        await BrowserFixture.CaptureAndCheckAsync(page, "admin-security-log");
    }

    [Fact]
    public async Task Settings_close_sign_up_and_put_a_notice_on_every_page_at_once_then_go_back()
    {
        var (page, _) = await AdminAsync();
        var visitor = await browser.NewPageAsync(server);

        await page.GotoAsync("/admin/settings");
        await BrowserFixture.CaptureAndCheckAsync(page, "admin-settings");
        var signUp = page.Locator("form[data-setting='Accounts:AllowSignUp']");
        await signUp.GetByLabel("On").UncheckAsync();
        await signUp.GetByRole(AriaRole.Button, new() { Name = "Save Anyone may create an account" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("saved");
        var notice = page.Locator("form[data-setting='Site:Notice']");
        await notice.GetByLabel("Text").FillAsync("Maintenance on Saturday from 10:00 UTC.");
        await notice.GetByRole(AriaRole.Button, new() { Name = "Save Notice on every page" }).ClickAsync();

        try
        {
            var closed = await visitor.GotoAsync("/account/sign-up");
            Assert.Equal((int)HttpStatusCode.Forbidden, closed!.Status);
            await visitor.GotoAsync("/account/sign-in");
            await Assertions.Expect(visitor.GetByRole(AriaRole.Note)).ToHaveTextAsync("Maintenance on Saturday from 10:00 UTC.");
            await Assertions.Expect(visitor.GetByRole(AriaRole.Link, new() { Name = "Create account" })).ToHaveCountAsync(0);
            await BrowserFixture.CaptureAndCheckAsync(visitor, "site-notice");
            await Assertions.Expect(page.Locator("form[data-setting='Accounts:AllowSignUp']")).ToContainTextAsync("Set by");
        }
        finally
        {
            await page.GotoAsync("/admin/settings");
            await page.GetByRole(AriaRole.Button, new() { Name = "Reset Anyone may create an account to the configured value" }).ClickAsync();
            await page.GetByRole(AriaRole.Button, new() { Name = "Reset Notice on every page to the configured value" }).ClickAsync();
        }
        Assert.Equal((int)HttpStatusCode.OK, (await visitor.GotoAsync("/account/sign-up"))!.Status);
        await Assertions.Expect(visitor.GetByRole(AriaRole.Note)).ToHaveCountAsync(0);
    }
}

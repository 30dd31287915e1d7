using Latchkey.Tests.Infrastructure;
using Microsoft.Playwright;

namespace Latchkey.Tests.Pages;

/// <summary>
/// "Sign in with Corp SSO" in headless Chromium against the loopback OpenID Connect provider
/// (Node.js oidc-provider and its own sign-in and consent pages): a new person creates an account,
/// an existing one links with its password. Latchkey's pages are checked with axe at both widths.
/// </summary>
public sealed class ExternalSignInPageTests(SqliteServerWithOidcPeer server, BrowserFixture browser)
    : IClassFixture<SqliteServerWithOidcPeer>, IClassFixture<BrowserFixture>
{
    /// <summary>From Latchkey's sign-in page through the provider's sign-in and consent pages, back to Latchkey.</summary>
    private static async Task SignInAtProviderAsync(IPage page, string email)
    {
        await page.GotoAsync("/account/sign-in");
        await page.GetByRole(AriaRole.Link, new() { Name = $"Sign in with {OidcPeer.DisplayName}" }).ClickAsync();
        await page.GetByPlaceholder("Enter any login").FillAsync(email);
        await page.GetByPlaceholder("and password").FillAsync("any password");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign-in" }).ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Continue" }).ClickAsync();
    }

    [Fact]
    public async Task A_new_person_signs_up_with_the_company_identity_provider()
    {
        var page = await browser.NewPageAsync(server);
        await page.GotoAsync("/account/sign-in");
        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = $"Sign in with {OidcPeer.DisplayName}" })).ToBeVisibleAsync();
        await BrowserFixture.CaptureAndCheckAsync(page, "sign-in-with-providers");

        await SignInAtProviderAsync(page, TestAccounts.NewEmail());
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Create your account" })).ToBeVisibleAsync();
        await BrowserFixture.CaptureAndCheckAsync(page, "external-create-account");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create account" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Sign out" })).ToBeVisibleAsync();

        await page.GotoAsync("/profile/security");
        await Assertions.Expect(page.GetByText("linked", new() { Exact = true })).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Set a password" })).ToBeVisibleAsync();
        await BrowserFixture.CaptureAndCheckAsync(page, "security-with-linked-account");
    }

    [Fact]
    public async Task An_existing_account_links_the_provider_with_its_password()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var page = await browser.NewPageAsync(server);
        await SignInAtProviderAsync(page, account.Email);
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = $"Link {OidcPeer.DisplayName} to your account" })).ToBeVisibleAsync();
        await BrowserFixture.CaptureAndCheckAsync(page, "external-link-existing");
        await page.GetByLabel($"Password of {account.Email}").FillAsync(account.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Link and sign in" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Sign out" })).ToBeVisibleAsync();
        BrowserFixture.AssertNoPolicyViolations(page, "external sign-in pages");
    }
}

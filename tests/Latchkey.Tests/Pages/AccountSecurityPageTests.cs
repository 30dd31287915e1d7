using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;
using OtpNet;

namespace Latchkey.Tests.Pages;

/// <summary>
/// Passkeys and two-factor sign-in in headless Chromium, as a person uses them. The passkey lives
/// in Chromium's virtual authenticator (DevTools Protocol <c>WebAuthn.addVirtualAuthenticator</c>),
/// a real WebAuthn authenticator with its own keys; the authenticator app is Otp.NET. Every page is
/// checked with axe-core at desktop and phone widths.
/// </summary>
public sealed class AccountSecurityPageTests(PageServer server, BrowserFixture browser) : IClassFixture<PageServer>, IClassFixture<BrowserFixture>
{
    private async Task<(IPage Page, string Email)> SignedUpAsync()
    {
        // Passkeys belong to a domain: the page is opened as localhost, not 127.0.0.1.
        var page = await browser.NewPageAsync(server, host: "localhost");
        var email = TestAccounts.NewEmail();
        await page.GotoAsync("/account/sign-up");
        await page.GetByLabel("E-mail address").FillAsync(email);
        await page.GetByLabel("Your name").FillAsync("Pat Passkey");
        await page.GetByLabel("Password", new() { Exact = true }).FillAsync(TestAccounts.Password);
        await page.GetByLabel("Repeat the password").FillAsync(TestAccounts.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Create account" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Sign out" })).ToBeVisibleAsync();
        return (page, email);
    }

    /// <summary>A platform authenticator that holds discoverable credentials and verifies its user (as a phone's screen lock does).</summary>
    private static async Task AddVirtualAuthenticatorAsync(IPage page)
    {
        var devTools = await page.Context.NewCDPSessionAsync(page);
        await devTools.SendAsync("WebAuthn.enable", new Dictionary<string, object> { ["enableUI"] = false });
        await devTools.SendAsync("WebAuthn.addVirtualAuthenticator", new Dictionary<string, object>
        {
            ["options"] = new Dictionary<string, object>
            {
                ["protocol"] = "ctap2",
                ["transport"] = "internal",
                ["hasResidentKey"] = true,
                ["hasUserVerification"] = true,
                ["isUserVerified"] = true,
                ["automaticPresenceSimulation"] = true,
            },
        });
    }

    private Task AssertEventAsync(string email, string type, string detail) =>
        Eventually.TrueAsync(() => server.WithDbAsync(db =>
                (from e in db.SecurityEvents join u in db.Users on e.AccountId equals u.Id
                 where u.Email == email && e.Type == type && e.Detail!.Contains(detail) select e).AnyAsync()),
            TimeSpan.FromSeconds(5), $"a {type} event ({detail})");

    [Fact]
    public async Task A_person_adds_a_passkey_and_signs_in_with_it_without_the_password()
    {
        var (page, email) = await SignedUpAsync();
        await AddVirtualAuthenticatorAsync(page);

        await page.GetByRole(AriaRole.Link, new() { Name = "Sign-in and security" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Sign-in and security" })).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Cell, new() { Name = "this browser" })).ToBeVisibleAsync();
        await BrowserFixture.CaptureAndCheckAsync(page, "security");

        await page.GetByLabel("Name", new() { Exact = true }).FillAsync("Test laptop");
        await page.GetByRole(AriaRole.Button, new() { Name = "Add a passkey" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Passkey added");
        await Assertions.Expect(page.GetByText("Test laptop")).ToBeVisibleAsync();
        await BrowserFixture.CaptureAndCheckAsync(page, "security-with-passkey");

        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await page.GotoAsync("/account/sign-in?returnUrl=%2Fprofile%2Fapi-keys");
        await BrowserFixture.CaptureAndCheckAsync(page, "sign-in-with-passkey");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in with a passkey" }).ClickAsync();

        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "API keys" })).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Sign out" })).ToBeVisibleAsync();
        await AssertEventAsync(email, "passkey_added", "Test laptop");
        await AssertEventAsync(email, "sign_in", "passkey");

        // Removed, it signs nobody in: the authenticator still offers it, the server refuses it.
        await page.GotoAsync("/profile/security");
        await page.GetByRole(AriaRole.Button, new() { Name = "Remove passkey Test laptop" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Passkey removed");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await page.GotoAsync("/account/sign-in");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in with a passkey" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Alert).First).ToContainTextAsync("did not sign you in");
        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = "Sign in", Exact = true })).ToBeVisibleAsync();
        BrowserFixture.AssertNoPolicyViolations(page, "passkey pages");
    }

    [Fact]
    public async Task A_person_sets_up_an_authenticator_app_and_signs_in_with_its_code()
    {
        var (page, email) = await SignedUpAsync();
        await page.GotoAsync("/profile/security");
        await page.GetByRole(AriaRole.Link, new() { Name = "Set up an authenticator app" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Img, new() { Name = "QR code for your authenticator app" })).ToBeVisibleAsync();
        await BrowserFixture.CaptureAndCheckAsync(page, "two-factor-setup");
        var key = (await page.Locator("#authenticator-key").TextContentAsync())!.Replace(" ", "", StringComparison.Ordinal).ToUpperInvariant();
        var app = new Totp(Base32Encoding.ToBytes(key));

        await page.GetByLabel("Enter the six-digit code the app shows").FillAsync(app.ComputeTotp());
        await page.GetByRole(AriaRole.Button, new() { Name = "Turn on" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Two-factor authentication is on" })).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.List, new() { Name = "Recovery codes" }).GetByRole(AriaRole.Listitem)).ToHaveCountAsync(10);
        await BrowserFixture.CaptureAndCheckAsync(page, "two-factor-recovery-codes");

        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await page.GotoAsync("/account/sign-in");
        await page.GetByLabel("E-mail address").FillAsync(email);
        await page.GetByLabel("Password").FillAsync(TestAccounts.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "One more step" })).ToBeVisibleAsync();
        await BrowserFixture.CaptureAndCheckAsync(page, "sign-in-two-factor");
        await page.GetByRole(AriaRole.Link, new() { Name = "Use a recovery code" }).ClickAsync();
        await BrowserFixture.CaptureAndCheckAsync(page, "sign-in-recovery-code");
        await page.GetByRole(AriaRole.Link, new() { Name = "Use the app's code instead" }).ClickAsync();

        await page.GetByLabel("The six-digit code from your authenticator app").FillAsync(app.ComputeTotp());
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Sign out" })).ToBeVisibleAsync();
        await AssertEventAsync(email, "sign_in", "password and authenticator app");
        BrowserFixture.AssertNoPolicyViolations(page, "two-factor pages");
    }
}

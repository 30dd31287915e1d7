using System.Net;
using System.Text.RegularExpressions;
using Latchkey.Features.Accounts;
using Latchkey.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Latchkey.Tests.Accounts;

/// <summary>With <c>Accounts:RequireConfirmedEmail</c>: no session until the address is confirmed, and the way there.</summary>
public sealed partial class EmailConfirmationTests(ConfirmedEmailServer server) : IClassFixture<ConfirmedEmailServer>
{
    private static Dictionary<string, string> SignUpForm(string email) => new()
    {
        ["Input.Email"] = email,
        ["Input.DisplayName"] = "Cora Confirm",
        ["Input.TimeZone"] = "UTC",
        ["Input.Password"] = TestAccounts.Password,
        ["Input.ConfirmPassword"] = TestAccounts.Password,
    };

    private string LinkTo(string email)
    {
        var sent = Assert.Single(server.Emails.To(email), e => e.Subject == "Confirm your e-mail address for Latchkey");
        return new Uri(ConfirmLink().Match(sent.Body).Value).PathAndQuery;
    }

    [Fact]
    public async Task An_account_signs_in_only_once_its_address_is_confirmed_through_the_emailed_link()
    {
        var email = TestAccounts.NewEmail();
        var browser = server.CreateClient();

        var signedUp = await Browser.SubmitFormAsync(browser, "/account/sign-up", SignUpForm(email));

        Assert.Equal(HttpStatusCode.OK, signedUp.StatusCode);
        Assert.Contains("Check your e-mail", await signedUp.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Redirect, (await browser.GetAsync("/profile/api-keys")).StatusCode);
        // The right password hears why; a wrong one hears what any wrong password hears.
        var unconfirmed = await (await TestAccounts.SignInAsync(server.CreateClient(), email, TestAccounts.Password)).Content.ReadAsStringAsync();
        Assert.Contains("Confirm your e-mail address first", unconfirmed);
        var wrong = await (await TestAccounts.SignInAsync(server.CreateClient(), email, "not the password at all")).Content.ReadAsStringAsync();
        Assert.DoesNotContain("Confirm your e-mail", wrong);

        // Opening the link confirms nothing (mail scanners fetch links); the button does.
        var link = LinkTo(email);
        var opened = await browser.GetStringAsync(link);
        Assert.Contains("Confirm my address", opened);
        Assert.False(await server.WithDbAsync(db => db.Users.Where(u => u.Email == email).Select(u => u.EmailConfirmed).SingleAsync()));
        var confirmed = await Browser.SubmitFormAsync(browser, link + "&handler=Confirm", new Dictionary<string, string>());
        Assert.Contains("Your e-mail address is confirmed", await confirmed.Content.ReadAsStringAsync());

        Assert.Equal(HttpStatusCode.Redirect, (await TestAccounts.SignInAsync(server.CreateClient(), email, TestAccounts.Password)).StatusCode);
        await Eventually.TrueAsync(async () => await server.WithDbAsync(db => db.SecurityEvents.CountAsync(e => e.Type == "email_confirmed"
            && e.AccountId == db.Users.Where(u => u.Email == email).Select(u => u.Id).Single())) == 1, TimeSpan.FromSeconds(5), "email_confirmed recorded");
    }

    [Fact]
    public async Task A_broken_link_says_so_and_a_new_one_is_sent_only_to_an_unconfirmed_account()
    {
        var email = TestAccounts.NewEmail();
        await Browser.SubmitFormAsync(server.CreateClient(), "/account/sign-up", SignUpForm(email));
        var link = LinkTo(email);
        var tampered = Regex.Replace(link, "code=[^&]+", "code=AAAA");

        var broken = await Browser.SubmitFormAsync(server.CreateClient(), tampered + "&handler=Confirm", new Dictionary<string, string>());
        var resent = await Browser.SubmitFormAsync(server.CreateClient(), "/account/confirm-email?handler=Resend", new Dictionary<string, string> { ["Email"] = email });
        var unknown = await Browser.SubmitFormAsync(server.CreateClient(), "/account/confirm-email?handler=Resend",
            new Dictionary<string, string> { ["Email"] = "nobody-" + email });

        Assert.Equal(HttpStatusCode.BadRequest, broken.StatusCode);
        Assert.Contains("This link does not work", await broken.Content.ReadAsStringAsync());
        Assert.Equal(2, server.Emails.To(email).Count);
        Assert.Equal(HttpStatusCode.OK, unknown.StatusCode);
        Assert.Contains("If <strong>nobody-", await unknown.Content.ReadAsStringAsync());
        Assert.Contains("we sent it a new link", await resent.Content.ReadAsStringAsync());
        Assert.Empty(server.Emails.To("nobody-" + email));
        // An operator's account counts as confirmed.
        var operatorEmail = TestAccounts.NewEmail();
        var created = await server.RunCliAsync(["users", "create", "--email", operatorEmail, "--name", "Op", "--password-stdin"], input: TestAccounts.Password);
        Assert.Equal(0, created.ExitCode);
        Assert.Equal(HttpStatusCode.Redirect, (await TestAccounts.SignInAsync(server.CreateClient(), operatorEmail, TestAccounts.Password)).StatusCode);
    }

    [Fact]
    public void Requiring_confirmation_without_a_way_to_send_the_link_is_refused_at_start()
    {
        var refused = new AccountOptionsValidator(new LogAccountEmailSender(new Environment(Environments.Production), Microsoft.Extensions.Logging.Abstractions.NullLogger<LogAccountEmailSender>.Instance),
            new Environment(Environments.Production)).Validate(null, new AccountOptions { RequireConfirmedEmail = true });
        var development = new AccountOptionsValidator(new LogAccountEmailSender(new Environment(Environments.Development), Microsoft.Extensions.Logging.Abstractions.NullLogger<LogAccountEmailSender>.Instance),
            new Environment(Environments.Development)).Validate(null, new AccountOptions { RequireConfirmedEmail = true });

        Assert.True(refused.Failed);
        Assert.Contains("Email:SmtpHost", refused.FailureMessage);
        Assert.True(development.Succeeded);
        Assert.True(new AccountOptionsValidator(server.Emails, new Environment(Environments.Production)).Validate(null, new AccountOptions { RequireConfirmedEmail = true }).Succeeded);
    }

    private sealed class Environment(string name) : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = name;
        public string ApplicationName { get; set; } = "Latchkey";
        public string ContentRootPath { get; set; } = AppContext.BaseDirectory;
        public Microsoft.Extensions.FileProviders.IFileProvider ContentRootFileProvider { get; set; } = new Microsoft.Extensions.FileProviders.NullFileProvider();
    }

    [GeneratedRegex(@"https?://\S+/account/confirm-email\?\S+")]
    private static partial Regex ConfirmLink();
}

/// <summary>A server that requires confirmed addresses and keeps what it sends.</summary>
public sealed class ConfirmedEmailServer : SqliteServer
{
    public CapturedEmails Emails { get; } = new();

    protected override void ConfigureServer(WebApplicationBuilder builder)
    {
        builder.Configuration["Accounts:RequireConfirmedEmail"] = "true";
        builder.Services.AddSingleton<IAccountEmailSender>(Emails);
    }
}

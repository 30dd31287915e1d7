using System.Net;
using Latchkey.Features.Accounts;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Tests.Accounts;

public abstract class AccountTests(LatchkeyServerFixture server)
{
    [Fact]
    public async Task Sign_up_creates_the_account_and_signs_the_user_in()
    {
        var account = await TestAccounts.SignUpAsync(server, timeZone: "America/New_York");

        var home = await account.Session.GetStringAsync("/");
        Assert.Contains($"signed in as <strong>{account.Email}</strong>", home);
        var user = await server.WithDbAsync(db => db.Users.AsNoTracking().SingleAsync(u => u.Email == account.Email));
        Assert.Equal("Test User", user.DisplayName);
        Assert.Equal("America/New_York", user.TimeZone);
        Assert.NotEqual(TestAccounts.Password, user.PasswordHash);
    }

    [Fact]
    public async Task Sign_up_without_the_antiforgery_token_is_refused()
    {
        var client = server.CreateClient();
        var email = TestAccounts.NewEmail();
        var response = await client.PostAsync("/account/sign-up", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Input.Email"] = email,
            ["Input.DisplayName"] = "Mallory",
            ["Input.Password"] = TestAccounts.Password,
            ["Input.ConfirmPassword"] = TestAccounts.Password,
        }));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.False(await server.WithDbAsync(db => db.Users.AnyAsync(u => u.Email == email)));
    }

    [Theory]
    [InlineData("not-an-email", "Test", "UTC", "correct horse battery staple", "valid e-mail address")]
    [InlineData("{email}", "", "UTC", "correct horse battery staple", "Enter your name")]
    [InlineData("{email}", "Test", "Mars/Olympus_Mons", "correct horse battery staple", "not a known time zone")]
    [InlineData("{email}", "Test", "UTC", "short", "at least 12 characters")]
    public async Task Sign_up_with_bad_input_explains_the_problem_and_creates_nothing(
        string email, string name, string timeZone, string password, string expectedMessage)
    {
        email = email.Replace("{email}", TestAccounts.NewEmail());
        var client = server.CreateClient();
        var before = await server.WithDbAsync(db => db.Users.CountAsync());

        var response = await Browser.SubmitFormAsync(client, "/account/sign-up", new Dictionary<string, string>
        {
            ["Input.Email"] = email,
            ["Input.DisplayName"] = name,
            ["Input.TimeZone"] = timeZone,
            ["Input.Password"] = password,
            ["Input.ConfirmPassword"] = password,
        });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains(expectedMessage, await response.Content.ReadAsStringAsync());
        Assert.Equal(before, await server.WithDbAsync(db => db.Users.CountAsync()));
    }

    [Fact]
    public async Task Sign_up_with_an_e_mail_already_in_use_is_refused()
    {
        var existing = await TestAccounts.SignUpAsync(server);
        var response = await Browser.SubmitFormAsync(server.CreateClient(), "/account/sign-up", new Dictionary<string, string>
        {
            ["Input.Email"] = existing.Email,
            ["Input.DisplayName"] = "Someone Else",
            ["Input.TimeZone"] = "UTC",
            ["Input.Password"] = "another long passphrase",
            ["Input.ConfirmPassword"] = "another long passphrase",
        });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("is already taken", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, await server.WithDbAsync(db => db.Users.CountAsync(u => u.Email == existing.Email)));
    }

    [Fact]
    public async Task Sign_in_with_the_right_password_starts_a_session_and_returns_to_a_local_url()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var client = server.CreateClient();

        var response = await SignInAsync(client, account.Email, account.Password, returnUrl: "/docs");

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/docs", response.Headers.Location?.OriginalString);
        Assert.Contains(account.Email, await client.GetStringAsync("/"));
    }

    [Fact]
    public async Task Sign_in_never_redirects_to_another_site()
    {
        var account = await TestAccounts.SignUpAsync(server);

        var response = await SignInAsync(server.CreateClient(), account.Email, account.Password, returnUrl: "https://evil.example/phish");

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/", response.Headers.Location?.OriginalString);
    }

    [Fact]
    public async Task Sign_in_with_a_wrong_password_or_unknown_e_mail_gives_the_same_answer()
    {
        var account = await TestAccounts.SignUpAsync(server);

        var wrongPassword = await SignInAsync(server.CreateClient(), account.Email, "not the password at all");
        var unknownUser = await SignInAsync(server.CreateClient(), TestAccounts.NewEmail(), "not the password at all");

        const string message = "That e-mail address and password do not match an account.";
        Assert.Contains(message, await wrongPassword.Content.ReadAsStringAsync());
        Assert.Contains(message, await unknownUser.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Repeated_failed_sign_ins_lock_the_account()
    {
        var account = await TestAccounts.SignUpAsync(server);
        for (var attempt = 0; attempt < 5; attempt++)
        {
            await SignInAsync(server.CreateClient(), account.Email, "wrong password " + attempt);
        }

        var client = server.CreateClient();
        var response = await SignInAsync(client, account.Email, account.Password);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("this account is locked", await response.Content.ReadAsStringAsync());
        Assert.DoesNotContain("signed in as", await client.GetStringAsync("/"));
        var lockoutEnd = await server.WithDbAsync(db => db.Users.Where(u => u.Email == account.Email).Select(u => u.LockoutEnd).SingleAsync());
        Assert.NotNull(lockoutEnd);
    }

    [Fact]
    public async Task Sign_out_needs_a_post_with_the_antiforgery_token()
    {
        var account = await TestAccounts.SignUpAsync(server);

        var forged = await account.Session.PostAsync("/account/sign-out", new FormUrlEncodedContent([]));
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.Contains("signed in as", await account.Session.GetStringAsync("/"));

        var signOut = await Browser.SubmitFormAsync(account.Session, "/account/sign-out", new Dictionary<string, string>());
        Assert.Equal(HttpStatusCode.Redirect, signOut.StatusCode);
        Assert.DoesNotContain("signed in as", await account.Session.GetStringAsync("/"));
    }

    [Fact]
    public async Task Pages_redirect_to_sign_in_but_json_apis_answer_401_problem_details()
    {
        var client = server.CreateClient();

        var api = await client.GetAsync("/api/keys");

        Assert.Equal(HttpStatusCode.Unauthorized, api.StatusCode);
        Assert.Equal("application/problem+json", api.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Every_account_form_carries_an_antiforgery_token_and_labels_its_fields()
    {
        var client = server.CreateClient();
        foreach (var path in new[] { AccountsSetup.SignUpPath, AccountsSetup.SignInPath })
        {
            var html = await client.GetStringAsync(path);
            Browser.AntiforgeryToken(html);
            foreach (System.Text.RegularExpressions.Match input in System.Text.RegularExpressions.Regex.Matches(html, """<input(?![^>]*type="hidden")[^>]*\bid="([^"]+)"[^>]*>"""))
            {
                Assert.Contains($"for=\"{input.Groups[1].Value}\"", html);
            }
        }
    }

    private static async Task<HttpResponseMessage> SignInAsync(HttpClient client, string email, string password, string? returnUrl = null)
    {
        var path = returnUrl is null ? "/account/sign-in" : $"/account/sign-in?returnUrl={Uri.EscapeDataString(returnUrl)}";
        return await Browser.SubmitFormAsync(client, path, new Dictionary<string, string>
        {
            ["Input.Email"] = email,
            ["Input.Password"] = password,
            ["ReturnUrl"] = returnUrl ?? "",
        });
    }
}

public sealed class AccountTestsOnSqlite(SqliteServer server) : AccountTests(server), IClassFixture<SqliteServer>;

public sealed class AccountTestsOnPostgres(PostgresServer server) : AccountTests(server), IClassFixture<PostgresServer>;

using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Latchkey.Features.Accounts;
using Latchkey.Features.Administration;
using Latchkey.Tests.Infrastructure;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using OtpNet;

namespace Latchkey.Tests.AccountSecurity;

/// <summary>
/// Two-factor sign-in, browser sessions, password change and passkey storage, on each database,
/// through the pages' forms as a browser sends them. The authenticator app is Otp.NET (RFC 6238),
/// an implementation independent of Identity's.
/// </summary>
public abstract partial class AccountSecurityTests(LatchkeyServerFixture server)
{
    private const string SecurityPath = "/profile/security";
    private const string SetupPath = "/profile/security/two-factor";
    private const string FirefoxOnLinux = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";

    /// <summary>The authenticator app: the code for now.</summary>
    private static string CodeFor(string key) => new Totp(Base32Encoding.ToBytes(key)).ComputeTotp();

    /// <summary>Sets up the authenticator app through the set-up page; returns its key and the recovery codes shown.</summary>
    private static async Task<(string Key, IReadOnlyList<string> RecoveryCodes)> EnrolAsync(TestAccount account)
    {
        var setup = await account.Session.GetAsync(SetupPath);
        Assert.Equal(HttpStatusCode.OK, setup.StatusCode);
        var html = await setup.Content.ReadAsStringAsync();
        Assert.Contains("<svg", html);
        var key = KeyPattern().Match(html).Groups[1].Value.Replace(" ", "", StringComparison.Ordinal).ToUpperInvariant();
        Assert.NotEmpty(key);

        var wrong = await Browser.SubmitFormAsync(account.Session, SetupPath, new Dictionary<string, string> { ["code"] = "000000" == CodeFor(key) ? "111111" : "000000" });
        Assert.Equal(HttpStatusCode.BadRequest, wrong.StatusCode);

        var enabled = await Browser.SubmitFormAsync(account.Session, SetupPath, new Dictionary<string, string> { ["code"] = CodeFor(key) });
        Assert.Equal(HttpStatusCode.OK, enabled.StatusCode);
        var codes = RecoveryCodePattern().Matches(await enabled.Content.ReadAsStringAsync()).Select(m => m.Groups[1].Value).ToArray();
        Assert.Equal(10, codes.Length);
        return (key, codes);
    }

    private HttpClient NewBrowser(string? userAgent = null)
    {
        var client = server.CreateClient();
        if (userAgent is not null)
        {
            client.DefaultRequestHeaders.UserAgent.ParseAdd(userAgent);
        }
        return client;
    }

    private static async Task AssertSignedInAsync(HttpClient client) =>
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/profile/api-keys")).StatusCode);

    private static async Task AssertSignedOutAsync(HttpClient client)
    {
        var response = await client.GetAsync("/profile/api-keys");
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.StartsWith("/account/sign-in", response.Headers.Location!.OriginalString.Replace(client.BaseAddress!.AbsoluteUri, "/", StringComparison.Ordinal));
    }

    private Task<string> UserIdAsync(string email) => server.WithDbAsync(db => db.Users.Where(u => u.Email == email).Select(u => u.Id).SingleAsync());

    private Task AssertEventAsync(string userId, string type, string? detailContains = null) =>
        Eventually.TrueAsync(() => server.WithDbAsync(db => db.SecurityEvents.AnyAsync(e => e.AccountId == userId && e.Type == type
                && (detailContains == null || e.Detail!.Contains(detailContains)))),
            TimeSpan.FromSeconds(5), $"a {type} event");

    [Fact]
    public async Task A_password_sign_in_then_asks_for_the_authenticator_code()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var (key, _) = await EnrolAsync(account);
        var userId = await UserIdAsync(account.Email);

        var browser = NewBrowser();
        var signIn = await TestAccounts.SignInAsync(browser, account.Email, account.Password);
        Assert.Equal(HttpStatusCode.Redirect, signIn.StatusCode);
        Assert.Equal("/account/sign-in/two-factor", signIn.Headers.Location!.OriginalString);
        // The password alone signs nobody in.
        await AssertSignedOutAsync(browser);

        var wrong = await Browser.SubmitFormAsync(browser, "/account/sign-in/two-factor", new Dictionary<string, string> { ["code"] = "12345" });
        Assert.Equal(HttpStatusCode.OK, wrong.StatusCode);
        Assert.Contains("not the one your app shows", await wrong.Content.ReadAsStringAsync());

        var right = await Browser.SubmitFormAsync(browser, "/account/sign-in/two-factor", new Dictionary<string, string>
        {
            ["code"] = CodeFor(key)[..3] + " " + CodeFor(key)[3..],
        });
        Assert.Equal(HttpStatusCode.Redirect, right.StatusCode);
        await AssertSignedInAsync(browser);
        await AssertEventAsync(userId, "two_factor_enabled");
        await AssertEventAsync(userId, "recovery_codes_created");
        await AssertEventAsync(userId, "sign_in_failed", "wrong authenticator code");
        await AssertEventAsync(userId, "sign_in", "password and authenticator app");
    }

    [Fact]
    public async Task A_remembered_browser_is_not_asked_again_until_it_is_forgotten()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var (key, _) = await EnrolAsync(account);
        var browser = NewBrowser();
        await TestAccounts.SignInAsync(browser, account.Email, account.Password);
        var remembered = await Browser.SubmitFormAsync(browser, "/account/sign-in/two-factor", new Dictionary<string, string>
        {
            ["code"] = CodeFor(key),
            ["remember"] = "true",
        });
        Assert.Equal(HttpStatusCode.Redirect, remembered.StatusCode);
        await Browser.SubmitFormAsync(browser, "/account/sign-out", new Dictionary<string, string>());

        var again = await TestAccounts.SignInAsync(browser, account.Email, account.Password);
        Assert.Equal("/", again.Headers.Location!.OriginalString);
        await AssertSignedInAsync(browser);

        Assert.Equal(HttpStatusCode.Redirect, (await Browser.SubmitFormAsync(browser, SecurityPath + "/ForgetBrowser", new Dictionary<string, string>())).StatusCode);
        await Browser.SubmitFormAsync(browser, "/account/sign-out", new Dictionary<string, string>());
        Assert.Equal("/account/sign-in/two-factor", (await TestAccounts.SignInAsync(browser, account.Email, account.Password)).Headers.Location!.OriginalString);
    }

    [Fact]
    public async Task A_recovery_code_signs_in_once()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var (_, codes) = await EnrolAsync(account);
        var userId = await UserIdAsync(account.Email);

        var first = NewBrowser();
        await TestAccounts.SignInAsync(first, account.Email, account.Password);
        // As a person might type it: lower case, with spaces.
        var typed = codes[0].ToLowerInvariant().Replace("-", " - ", StringComparison.Ordinal);
        var used = await Browser.SubmitFormAsync(first, "/account/sign-in/two-factor/Recovery", new Dictionary<string, string> { ["recoveryCode"] = typed });
        Assert.Equal(HttpStatusCode.Redirect, used.StatusCode);
        await AssertSignedInAsync(first);
        await AssertEventAsync(userId, "recovery_code_used", "9 left");
        await AssertEventAsync(userId, "sign_in", "password and recovery code");

        var second = NewBrowser();
        await TestAccounts.SignInAsync(second, account.Email, account.Password);
        var reused = await Browser.SubmitFormAsync(second, "/account/sign-in/two-factor/Recovery", new Dictionary<string, string> { ["recoveryCode"] = codes[0] });
        Assert.Equal(HttpStatusCode.OK, reused.StatusCode);
        Assert.Contains("not one of your unused recovery codes", await reused.Content.ReadAsStringAsync());
        await AssertSignedOutAsync(second);
    }

    [Fact]
    public async Task The_second_factors_secrets_are_encrypted_and_the_recovery_codes_hashed_at_rest()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var (key, codes) = await EnrolAsync(account);
        var userId = await UserIdAsync(account.Email);

        var stored = await server.WithDbAsync(db => db.UserTokens.Where(t => t.UserId == userId).Select(t => t.Value).ToListAsync());
        Assert.Equal(2, stored.Count);
        Assert.All(stored, value =>
        {
            Assert.StartsWith("v1.", value);
            Assert.DoesNotContain(key, value!, StringComparison.OrdinalIgnoreCase);
            Assert.All(codes, code => Assert.DoesNotContain(code, value!, StringComparison.OrdinalIgnoreCase));
        });
        await using var scope = server.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<LatchkeyUser>>();
        var user = (await users.FindByIdAsync(userId))!;
        Assert.Equal(key, await users.GetAuthenticatorKeyAsync(user));
        Assert.Equal(10, await users.CountRecoveryCodesAsync(user));
    }

    [Fact]
    public async Task Turning_two_factor_off_needs_the_password_and_forgets_the_key()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var (key, _) = await EnrolAsync(account);
        var userId = await UserIdAsync(account.Email);

        var wrong = await Browser.SubmitFormAsync(account.Session, SecurityPath + "/DisableTwoFactor", new Dictionary<string, string> { ["password"] = "not the password" });
        Assert.Equal(HttpStatusCode.BadRequest, wrong.StatusCode);
        var off = await Browser.SubmitFormAsync(account.Session, SecurityPath + "/DisableTwoFactor", new Dictionary<string, string> { ["password"] = account.Password });
        Assert.Equal(HttpStatusCode.Redirect, off.StatusCode);
        // This browser stays signed in; a password alone signs in again.
        await AssertSignedInAsync(account.Session);
        var browser = NewBrowser();
        Assert.Equal("/", (await TestAccounts.SignInAsync(browser, account.Email, account.Password)).Headers.Location!.OriginalString);
        Assert.Empty(await server.WithDbAsync(db => db.UserTokens.Where(t => t.UserId == userId).ToListAsync()));
        await AssertEventAsync(userId, "two_factor_disabled");
        _ = key;
    }

    [Fact]
    public async Task An_account_required_to_use_two_factor_is_sent_to_set_it_up_first()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var userId = await UserIdAsync(account.Email);
        await using (var scope = server.Services.CreateAsyncScope())
        {
            var administration = scope.ServiceProvider.GetRequiredService<AccountAdministration>();
            Assert.True(await administration.SetTwoFactorRequiredAsync((await administration.FindByIdAsync(userId))!, true, "a test"));
        }

        await Eventually.TrueAsync(async () =>
        {
            var response = await account.Session.GetAsync("/profile/api-keys");
            return response.StatusCode == HttpStatusCode.Redirect && response.Headers.Location!.OriginalString == SetupPath;
        }, TimeSpan.FromSeconds(5), "sent to the set-up page");
        var api = await account.Session.PostAsync("/profile/api-keys", new FormUrlEncodedContent([]));
        Assert.Equal(HttpStatusCode.Forbidden, api.StatusCode);

        await EnrolAsync(account);
        await AssertSignedInAsync(account.Session);
        var refused = await Browser.SubmitFormAsync(account.Session, SecurityPath + "/DisableTwoFactor", new Dictionary<string, string> { ["password"] = account.Password });
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("must use two-factor", await refused.Content.ReadAsStringAsync());
        await AssertEventAsync(userId, "two_factor_required", "by a test");
    }

    [Fact]
    public async Task With_the_setting_on_an_administrator_without_a_second_factor_sets_one_up_first()
    {
        var account = await TestAccounts.SignUpAsync(server);
        Assert.Equal(0, (await server.RunCliAsync(["users", "grant-admin", account.Email])).ExitCode);
        var admin = NewBrowser();
        Assert.Equal(HttpStatusCode.Redirect, (await TestAccounts.SignInAsync(admin, account.Email, account.Password)).StatusCode);
        await AssertSignedInAsync(admin);
        var settings = server.Services.GetRequiredService<Latchkey.Features.Settings.RuntimeSettings>();
        Assert.Null(await settings.SetAsync("Accounts:RequireTwoFactorForAdmins", "true", "a test", CancellationToken.None));
        try
        {
            await Eventually.TrueAsync(async () =>
            {
                var response = await admin.GetAsync("/admin");
                return response.StatusCode == HttpStatusCode.Redirect && response.Headers.Location!.OriginalString == SetupPath;
            }, TimeSpan.FromSeconds(5), "the administrator sent to the set-up page");
            // Someone without the role is not concerned.
            var other = await TestAccounts.SignUpAsync(server);
            await AssertSignedInAsync(other.Session);

            await EnrolAsync(new TestAccount(account.Email, account.Password, account.DisplayName, admin));
            Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync("/admin")).StatusCode);
        }
        finally
        {
            await settings.ResetAsync("Accounts:RequireTwoFactorForAdmins", CancellationToken.None);
        }
    }

    [Fact]
    public async Task The_command_line_resets_and_requires_an_accounts_second_factor()
    {
        var account = await TestAccounts.SignUpAsync(server);
        await EnrolAsync(account);

        var reset = await server.RunCliAsync(["users", "reset-two-factor", account.Email]);
        Assert.True(reset.ExitCode == 0, reset.Error);
        Assert.Contains("is off", reset.Output);
        await AssertSignedOutAsync(account.Session);
        var browser = NewBrowser();
        Assert.Equal("/", (await TestAccounts.SignInAsync(browser, account.Email, account.Password)).Headers.Location!.OriginalString);

        var require = await server.RunCliAsync(["users", "require-two-factor", account.Email]);
        Assert.True(require.ExitCode == 0, require.Error);
        await Eventually.TrueAsync(async () =>
        {
            var response = await browser.GetAsync("/profile/api-keys");
            return response.StatusCode == HttpStatusCode.Redirect && response.Headers.Location!.OriginalString == SetupPath;
        }, TimeSpan.FromSeconds(5), "sent to the set-up page");
        var show = await server.RunCliAsync(["users", "show", account.Email]);
        Assert.Contains("off, required for this account", show.Output);
        await AssertEventAsync(await UserIdAsync(account.Email), "two_factor_disabled", "latchkey users reset-two-factor");
    }

    [Fact]
    public async Task Sessions_are_listed_and_one_is_ended_from_another_browser()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var userId = await UserIdAsync(account.Email);
        var firefox = NewBrowser(FirefoxOnLinux);
        Assert.Equal(HttpStatusCode.Redirect, (await TestAccounts.SignInAsync(firefox, account.Email, account.Password)).StatusCode);
        await AssertSignedInAsync(firefox);

        var page = await (await account.Session.GetAsync(SecurityPath)).Content.ReadAsStringAsync();
        Assert.Contains("Firefox on Linux", page);
        Assert.Contains("this browser", page);
        var rows = await server.WithDbAsync(db => db.AccountSessions.Where(s => s.UserId == userId).ToListAsync());
        Assert.Equal(2, rows.Count);
        // The ticket is encrypted: neither the address nor the name is readable in the row.
        Assert.All(rows, row => Assert.DoesNotContain(account.Email, Encoding.UTF8.GetString(row.Ticket), StringComparison.Ordinal));
        var firefoxId = Assert.Single(SessionIdPattern().Matches(page)).Groups[1].Value;
        Assert.Equal(rows.Single(r => r.UserAgent == FirefoxOnLinux).Id, firefoxId);

        var ended = await Browser.SubmitFormAsync(account.Session, SecurityPath + "/EndSession", new Dictionary<string, string> { ["id"] = firefoxId });
        Assert.Equal(HttpStatusCode.Redirect, ended.StatusCode);
        await AssertSignedOutAsync(firefox);
        await AssertSignedInAsync(account.Session);
        await AssertEventAsync(userId, "session_ended");
        // Another account's session id ends nothing.
        var other = await TestAccounts.SignUpAsync(server);
        var otherId = (await server.WithDbAsync(db => db.AccountSessions.Where(s => s.UserId != userId).Select(s => s.Id).ToListAsync())).First();
        Assert.Equal(HttpStatusCode.NotFound, (await Browser.SubmitFormAsync(account.Session, SecurityPath + "/EndSession", new Dictionary<string, string> { ["id"] = otherId })).StatusCode);
        await AssertSignedInAsync(other.Session);
    }

    [Fact]
    public async Task Changing_the_password_signs_out_every_other_browser_and_keeps_this_one()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var other = NewBrowser(FirefoxOnLinux);
        await TestAccounts.SignInAsync(other, account.Email, account.Password);
        await AssertSignedInAsync(other);

        var wrong = await Browser.SubmitFormAsync(account.Session, SecurityPath + "/ChangePassword", new Dictionary<string, string>
        {
            ["PasswordChange.Current"] = "not my password",
            ["PasswordChange.New"] = "a brand new long password",
            ["PasswordChange.Repeat"] = "a brand new long password",
        });
        Assert.Equal(HttpStatusCode.BadRequest, wrong.StatusCode);
        Assert.Contains("not your current password", await wrong.Content.ReadAsStringAsync());

        var changed = await Browser.SubmitFormAsync(account.Session, SecurityPath + "/ChangePassword", new Dictionary<string, string>
        {
            ["PasswordChange.Current"] = account.Password,
            ["PasswordChange.New"] = "a brand new long password",
            ["PasswordChange.Repeat"] = "a brand new long password",
        });
        Assert.Equal(HttpStatusCode.Redirect, changed.StatusCode);
        await AssertSignedInAsync(account.Session);
        await AssertSignedOutAsync(other);
        Assert.Equal("/", (await TestAccounts.SignInAsync(NewBrowser(), account.Email, "a brand new long password")).Headers.Location!.OriginalString);
        await AssertEventAsync(await UserIdAsync(account.Email), "password_changed");
    }

    [Fact]
    public async Task Passkeys_are_kept_listed_and_removed()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var userId = await UserIdAsync(account.Email);
        var credentialId = Guid.NewGuid().ToByteArray();
        await using (var scope = server.Services.CreateAsyncScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<UserManager<LatchkeyUser>>();
            var user = (await users.FindByIdAsync(userId))!;
            var result = await users.AddOrUpdatePasskeyAsync(user, new UserPasskeyInfo(credentialId, [1, 2, 3], DateTimeOffset.UtcNow, 0, ["internal"],
                isUserVerified: true, isBackupEligible: true, isBackedUp: true, attestationObject: [4], clientDataJson: [5]) { Name = "Work laptop" });
            Assert.True(result.Succeeded);
        }

        var page = await (await account.Session.GetAsync(SecurityPath)).Content.ReadAsStringAsync();
        Assert.Contains("Work laptop", page);
        Assert.Contains("synced", page);
        var id = System.Buffers.Text.Base64Url.EncodeToString(credentialId);
        Assert.Equal(HttpStatusCode.NotFound,
            (await Browser.SubmitFormAsync(account.Session, SecurityPath + "/RemovePasskey", new Dictionary<string, string> { ["id"] = "not-base64!" })).StatusCode);
        var removed = await Browser.SubmitFormAsync(account.Session, SecurityPath + "/RemovePasskey", new Dictionary<string, string> { ["id"] = id });
        Assert.Equal(HttpStatusCode.Redirect, removed.StatusCode);
        Assert.Equal(0, await server.WithDbAsync(db => db.UserPasskeys.CountAsync(p => p.UserId == userId)));
        await AssertEventAsync(userId, "passkey_removed", "Work laptop");
    }

    [GeneratedRegex("""id="authenticator-key">([a-z0-9 ]+)</code>""")]
    private static partial Regex KeyPattern();

    [GeneratedRegex("""<li><code>([A-Z0-9-]+)</code></li>""")]
    private static partial Regex RecoveryCodePattern();

    [GeneratedRegex("""name="id" value="([0-9a-f]{64})""")]
    private static partial Regex SessionIdPattern();
}

public sealed class AccountSecurityTestsOnSqlite(SqliteServer server) : AccountSecurityTests(server), IClassFixture<SqliteServer>;

public sealed class AccountSecurityTestsOnPostgres(PostgresServer server) : AccountSecurityTests(server), IClassFixture<PostgresServer>;

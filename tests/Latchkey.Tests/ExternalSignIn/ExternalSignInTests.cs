using System.Net;
using System.Text.RegularExpressions;
using Latchkey.Features.Accounts;
using Latchkey.Tests.Infrastructure;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Latchkey.Tests.ExternalSignIn;

/// <summary>
/// Sign-in with an existing identity through OpenIddict's client against a real OpenID Connect
/// provider on loopback (Node.js oidc-provider), on each database: a new person gets an account,
/// a returning one signs straight in, an account with the verified address is linked only with its
/// password, an unverified address links nothing, and a signed-in person links and unlinks.
/// The browser is an HttpClient that follows the redirects and fills in the provider's forms.
/// </summary>
public abstract partial class ExternalSignInTests(LatchkeyServerFixture server)
{
    private const string Provider = OidcPeer.ProviderName;

    /// <summary>Starts at Latchkey's sign-in button, signs in at the provider as <paramref name="login"/>, and returns Latchkey's first answer after the callback.</summary>
    private async Task<HttpResponseMessage> SignInWithProviderAsync(HttpClient browser, string login, string returnUrl = "/profile/api-keys", string from = "/account/sign-in")
    {
        var start = await browser.GetAsync(from);
        Assert.Contains($"Start?provider={Provider}", await start.Content.ReadAsStringAsync());
        var response = await browser.GetAsync($"/account/external/Start?provider={Provider}&returnUrl={Uri.EscapeDataString(returnUrl)}");
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        // Through the provider: its sign-in form (any password), its consent form, then back.
        for (var hops = 0; hops < 20; hops++)
        {
            var location = response.Headers.Location;
            if (response.StatusCode is HttpStatusCode.OK && response.RequestMessage!.RequestUri!.Port != server.BaseAddress.Port)
            {
                var html = await response.Content.ReadAsStringAsync();
                var action = new Uri(response.RequestMessage.RequestUri, WebUtility.HtmlDecode(FormAction().Match(html).Groups[1].Value));
                var fields = HiddenField().Matches(html).ToDictionary(m => m.Groups[1].Value, m => WebUtility.HtmlDecode(m.Groups[2].Value));
                if (html.Contains("name=\"login\"", StringComparison.Ordinal))
                {
                    fields["login"] = login;
                    fields["password"] = "any password";
                }
                response = await browser.PostAsync(action, new FormUrlEncodedContent(fields));
                continue;
            }
            if (location is null)
            {
                return response;
            }
            var next = location.IsAbsoluteUri ? location : new Uri(response.RequestMessage!.RequestUri!, location);
            if (next.Port == server.BaseAddress.Port && !next.AbsolutePath.StartsWith("/account/external", StringComparison.Ordinal))
            {
                return response;
            }
            response = await browser.GetAsync(next);
        }
        throw new InvalidOperationException("Too many redirects between Latchkey and the provider.");
    }

    private Task<LatchkeyUser?> UserAsync(string email) => server.WithDbAsync(db => db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.Email == email));

    private Task<bool> LinkedAsync(string userId) => server.WithDbAsync(db => db.UserLogins.AnyAsync(l => l.UserId == userId && l.LoginProvider == Provider));

    private Task AssertEventAsync(string userId, string type, string detail) =>
        Eventually.TrueAsync(() => server.WithDbAsync(db => db.SecurityEvents.AnyAsync(e => e.AccountId == userId && e.Type == type && e.Detail!.Contains(detail))),
            TimeSpan.FromSeconds(5), $"a {type} event ({detail})");

    [Fact]
    public async Task A_new_person_creates_an_account_with_the_provider_and_then_signs_straight_in()
    {
        var email = TestAccounts.NewEmail();
        var browser = server.CreateClient();

        var offer = await SignInWithProviderAsync(browser, email);
        Assert.Equal(HttpStatusCode.OK, offer.StatusCode);
        var page = await offer.Content.ReadAsStringAsync();
        Assert.Contains("Create your account", page);
        Assert.Contains(OidcPeer.DisplayName, page);
        Assert.Null(await UserAsync(email));

        var created = await browser.PostAsync("/account/external/Create", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["ReturnUrl"] = "/profile/api-keys",
            ["__RequestVerificationToken"] = Browser.AntiforgeryToken(page),
        }));
        Assert.Equal(HttpStatusCode.Redirect, created.StatusCode);
        Assert.Equal("/profile/api-keys", created.Headers.Location!.OriginalString);
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/profile/api-keys")).StatusCode);
        var user = (await UserAsync(email))!;
        Assert.True(user.EmailConfirmed);
        Assert.Null(user.PasswordHash);
        Assert.True(await LinkedAsync(user.Id));
        await AssertEventAsync(user.Id, "sign_in", "new account, " + OidcPeer.DisplayName);

        // Another browser, another day: straight in, no question asked.
        var again = await SignInWithProviderAsync(server.CreateClient(), email);
        Assert.Equal(HttpStatusCode.Redirect, again.StatusCode);
        Assert.Equal("/profile/api-keys", again.Headers.Location!.OriginalString);
    }

    [Fact]
    public async Task An_account_with_the_verified_address_is_linked_only_with_its_password()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var browser = server.CreateClient();

        var offer = await SignInWithProviderAsync(browser, account.Email);
        var page = await offer.Content.ReadAsStringAsync();
        Assert.Contains("confirm with the account's password", page);
        var wrong = await browser.PostAsync("/account/external/LinkExisting", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["password"] = "not the password",
            ["__RequestVerificationToken"] = Browser.AntiforgeryToken(page),
        }));
        Assert.Equal(HttpStatusCode.BadRequest, wrong.StatusCode);
        var user = (await UserAsync(account.Email))!;
        Assert.False(await LinkedAsync(user.Id));

        var linked = await browser.PostAsync("/account/external/LinkExisting", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["password"] = account.Password,
            ["ReturnUrl"] = "/profile/api-keys",
            ["__RequestVerificationToken"] = Browser.AntiforgeryToken(await wrong.Content.ReadAsStringAsync()),
        }));
        Assert.Equal(HttpStatusCode.Redirect, linked.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/profile/api-keys")).StatusCode);
        Assert.True(await LinkedAsync(user.Id));
        await AssertEventAsync(user.Id, "external_login_added", "confirmed with the account's password");
        await AssertEventAsync(user.Id, "sign_in_failed", "wrong password linking");
    }

    [Fact]
    public async Task An_address_the_provider_did_not_verify_links_nothing()
    {
        var email = $"unverified-{Guid.NewGuid():N}@example.com";
        var account = await TestAccounts.SignUpAsync(server);
        await using (var scope = server.Services.CreateAsyncScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<UserManager<LatchkeyUser>>();
            var user = (await users.FindByEmailAsync(account.Email))!;
            Assert.True((await users.SetEmailAsync(user, email)).Succeeded);
            await users.SetUserNameAsync(user, email);
        }

        var offer = await SignInWithProviderAsync(server.CreateClient(), email);
        var page = await offer.Content.ReadAsStringAsync();
        Assert.Contains("did not confirm that the address is yours", page);
        Assert.DoesNotContain("name=\"password\"", page);
        Assert.False(await LinkedAsync((await UserAsync(email))!.Id));
    }

    [Fact]
    public async Task A_signed_in_person_links_the_provider_and_unlinks_it_but_not_the_only_way_in()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var user = (await UserAsync(account.Email))!;
        var security = await (await account.Session.GetAsync("/profile/security")).Content.ReadAsStringAsync();
        Assert.Contains("Link " + OidcPeer.DisplayName, security);

        // Another address at the provider: a signed-in person links whichever identity they bring.
        var offer = await SignInWithProviderAsync(account.Session, TestAccounts.NewEmail(), returnUrl: "/profile/security", from: "/profile/security");
        var page = await offer.Content.ReadAsStringAsync();
        Assert.Contains("Link " + OidcPeer.DisplayName + " to your account?", page);
        var linked = await account.Session.PostAsync("/account/external/Link", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = Browser.AntiforgeryToken(page),
        }));
        Assert.Equal(HttpStatusCode.Redirect, linked.StatusCode);
        Assert.True(await LinkedAsync(user.Id));
        await AssertEventAsync(user.Id, "external_login_added", "by the signed-in account");

        var unlinked = await Browser.SubmitFormAsync(account.Session, "/profile/security/Unlink", new Dictionary<string, string> { ["provider"] = Provider });
        Assert.Equal(HttpStatusCode.Redirect, unlinked.StatusCode);
        Assert.False(await LinkedAsync(user.Id));

        // An account made with the provider has no password: the provider is its only way in.
        var email = TestAccounts.NewEmail();
        var browser = server.CreateClient();
        var create = await SignInWithProviderAsync(browser, email);
        await browser.PostAsync("/account/external/Create", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = Browser.AntiforgeryToken(await create.Content.ReadAsStringAsync()),
        }));
        var refused = await Browser.SubmitFormAsync(browser, "/profile/security/Unlink", new Dictionary<string, string> { ["provider"] = Provider });
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("only way to sign in", await refused.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task An_account_made_with_the_provider_sets_a_password_and_deletes_itself_with_its_address()
    {
        var email = TestAccounts.NewEmail();
        var browser = server.CreateClient();
        var offer = await SignInWithProviderAsync(browser, email);
        await browser.PostAsync("/account/external/Create", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = Browser.AntiforgeryToken(await offer.Content.ReadAsStringAsync()),
        }));
        var security = await (await browser.GetAsync("/profile/security")).Content.ReadAsStringAsync();
        Assert.Contains("Set a password", security);
        Assert.DoesNotContain("PasswordChange.Current", security);

        var set = await Browser.SubmitFormAsync(browser, "/profile/security/ChangePassword", new Dictionary<string, string>
        {
            ["PasswordChange.New"] = "a long enough new password",
            ["PasswordChange.Repeat"] = "a long enough new password",
        });
        Assert.Equal(HttpStatusCode.Redirect, set.StatusCode);
        Assert.Equal("/", (await TestAccounts.SignInAsync(server.CreateClient(), email, "a long enough new password")).Headers.Location!.OriginalString);

        // Another account without a password confirms its deletion with its address.
        var other = TestAccounts.NewEmail();
        var otherBrowser = server.CreateClient();
        var otherOffer = await SignInWithProviderAsync(otherBrowser, other);
        await otherBrowser.PostAsync("/account/external/Create", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = Browser.AntiforgeryToken(await otherOffer.Content.ReadAsStringAsync()),
        }));
        Assert.Equal(HttpStatusCode.BadRequest, (await Browser.SubmitFormAsync(otherBrowser, "/profile/account/Delete",
            new Dictionary<string, string> { ["Password"] = "someone@else.example" })).StatusCode);
        var deleted = await Browser.SubmitFormAsync(otherBrowser, "/profile/account/Delete", new Dictionary<string, string> { ["Password"] = other.ToUpperInvariant() });
        Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        Assert.Null(await UserAsync(other));
        Assert.Equal(0, await server.WithDbAsync(db => db.UserLogins.CountAsync(l => l.ProviderKey.Length > 0 && db.Users.All(u => u.Id != l.UserId))));
    }

    [Fact]
    public async Task A_refused_or_forged_callback_signs_nobody_in()
    {
        var browser = server.CreateClient();
        var forged = await browser.GetAsync("/account/external/callback?code=forged&state=forged");
        Assert.Equal(HttpStatusCode.Redirect, forged.StatusCode);
        var page = await browser.GetAsync(forged.Headers.Location!);
        Assert.Contains("did not finish", await page.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Redirect, (await browser.GetAsync("/profile/api-keys")).StatusCode);
        var unknown = await browser.GetAsync("/account/external/Start?provider=nobody");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    [GeneratedRegex(""""<input type="hidden" name="([^"]+)" value="([^"]*)"""")]
    private static partial Regex HiddenField();

    [GeneratedRegex("""<form[^>]*action="([^"]+)"[^>]*method="post"|<form[^>]*method="post"[^>]*action="([^"]+)""")]
    private static partial Regex FormAction();
}

public sealed class ExternalSignInTestsOnSqlite(SqliteServerWithOidcPeer server) : ExternalSignInTests(server), IClassFixture<SqliteServerWithOidcPeer>;

public sealed class ExternalSignInTestsOnPostgres(PostgresServerWithOidcPeer server) : ExternalSignInTests(server), IClassFixture<PostgresServerWithOidcPeer>;

/// <summary>A server with OpenIddict's presets for GitHub, Google and Microsoft configured (no network: their authorization endpoints are known).</summary>
public sealed class SqliteServerWithProviderPresets : SqliteServer
{
    protected override void ConfigureServer(Microsoft.AspNetCore.Builder.WebApplicationBuilder builder)
    {
        foreach (var (name, type) in new[] { ("github", "GitHub"), ("google", "Google"), ("work", "Microsoft") })
        {
            builder.Configuration[$"ExternalSignIn:Providers:{name}:Type"] = type;
            builder.Configuration[$"ExternalSignIn:Providers:{name}:ClientId"] = $"{name}-client-id";
            builder.Configuration[$"ExternalSignIn:Providers:{name}:ClientSecret"] = $"{name}-client-secret";
        }
        // An issuer nobody answers at: the closed port refuses at once.
        builder.Configuration["ExternalSignIn:Providers:down:Issuer"] = $"http://127.0.0.1:{FreePorts.Next()}";
        builder.Configuration["ExternalSignIn:Providers:down:DisplayName"] = "Down SSO";
        builder.Configuration["ExternalSignIn:Providers:down:ClientId"] = "latchkey";
        builder.Configuration["ExternalSignIn:Providers:work:Tenant"] = "organizations";
    }
}

/// <summary>The presets send people to the real services' authorization endpoints with Latchkey's callback, PKCE and state.</summary>
public sealed class ExternalSignInPresetTests(SqliteServerWithProviderPresets server) : IClassFixture<SqliteServerWithProviderPresets>
{
    [Fact]
    public async Task Each_preset_is_offered_and_github_sends_the_person_to_its_authorization_endpoint()
    {
        var browser = server.CreateClient();
        var signIn = await (await browser.GetAsync("/account/sign-in")).Content.ReadAsStringAsync();
        Assert.Contains("Sign in with GitHub", signIn);
        Assert.Contains("Sign in with Google", signIn);
        Assert.Contains("Sign in with Microsoft", signIn);

        // GitHub publishes no discovery document: OpenIddict knows its endpoints, so this needs no network.
        var start = await browser.GetAsync("/account/external/Start?provider=github");
        Assert.Equal(HttpStatusCode.Redirect, start.StatusCode);
        var location = start.Headers.Location!.AbsoluteUri;
        Assert.StartsWith("https://github.com/login/oauth/authorize", location);
        Assert.Contains("client_id=github-client-id", location);
        Assert.Contains("state=", location);
        Assert.Contains(Uri.EscapeDataString(new Uri(server.BaseAddress, "/account/external/callback").AbsoluteUri), location);
    }

    [Fact]
    public async Task A_provider_that_cannot_be_reached_gets_a_page_that_says_so()
    {
        var response = await server.CreateClient().GetAsync("/account/external/Start?provider=down");
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains("Down SSO cannot be reached right now", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public void A_provider_without_what_it_needs_is_refused_at_start()
    {
        var validator = new Latchkey.Features.ExternalSignIn.ExternalSignInOptions
        {
            Providers =
            {
                ["Bad Name"] = new() { ClientId = "x" },
                ["github"] = new() { Type = Latchkey.Features.ExternalSignIn.ExternalProviderType.GitHub, ClientId = "x" },
                ["corp"] = new() { ClientId = "", Issuer = "not a url" },
            },
        };
        var result = new Latchkey.Features.ExternalSignIn.ExternalSignInOptionsValidator().Validate(null, validator);
        Assert.True(result.Failed);
        Assert.Contains("ExternalSignIn:Providers:Bad Name: the name", result.FailureMessage);
        Assert.Contains("ExternalSignIn:Providers:github:ClientSecret is required", result.FailureMessage);
        Assert.Contains("ExternalSignIn:Providers:corp:ClientId is required", result.FailureMessage);
        Assert.Contains("ExternalSignIn:Providers:corp:Issuer", result.FailureMessage);
    }
}

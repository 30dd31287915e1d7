using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Tests.Cli;

public abstract partial class CliTests(LatchkeyServerFixture server)
{
    [Fact]
    public async Task Db_migrate_reports_an_up_to_date_database()
    {
        var run = await server.RunCliAsync(["db", "migrate"]);

        Assert.Equal(0, run.ExitCode);
        Assert.Contains("up to date", run.Output);
    }

    [Fact]
    public async Task Users_create_prints_a_generated_password_once_that_signs_in()
    {
        var email = TestAccounts.NewEmail();

        var run = await server.RunCliAsync(["users", "create", "--email", email, "--name", "Cli User", "--timezone", "Europe/Paris"]);

        Assert.Equal(0, run.ExitCode);
        var password = PasswordLine().Match(run.Output).Groups[1].Value;
        Assert.Equal(24, password.Length);
        var client = server.CreateClient();
        var signIn = await Browser.SubmitFormAsync(client, "/account/sign-in", new Dictionary<string, string>
        {
            ["Input.Email"] = email,
            ["Input.Password"] = password,
        });
        Assert.Equal(HttpStatusCode.Redirect, signIn.StatusCode);
        var user = await server.WithDbAsync(db => db.Users.AsNoTracking().SingleAsync(u => u.Email == email));
        Assert.Equal("Europe/Paris", user.TimeZone);
    }

    [Fact]
    public async Task Users_create_reads_the_password_from_stdin_when_asked()
    {
        var email = TestAccounts.NewEmail();

        var run = await server.RunCliAsync(["users", "create", "--email", email, "--name", "Stdin User", "--password-stdin"], input: "a long enough passphrase\n");

        Assert.Equal(0, run.ExitCode);
        Assert.DoesNotContain("Password:", run.Output);
        var signIn = await Browser.SubmitFormAsync(server.CreateClient(), "/account/sign-in", new Dictionary<string, string>
        {
            ["Input.Email"] = email,
            ["Input.Password"] = "a long enough passphrase",
        });
        Assert.Equal(HttpStatusCode.Redirect, signIn.StatusCode);
    }

    [Fact]
    public async Task Users_create_with_bad_input_fails_with_the_reasons()
    {
        var run = await server.RunCliAsync(["users", "create", "--email", TestAccounts.NewEmail(), "--name", "X", "--timezone", "Nowhere/Special"]);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("not a known time zone", run.Error);
    }

    [Fact]
    public async Task Keys_create_list_and_revoke_work_from_the_command_line()
    {
        var account = await TestAccounts.SignUpAsync(server);

        var create = await server.RunCliAsync(["keys", "create", "--user", account.Email, "--name", "from cli", "--scope", "IDENTITY", "--scope", "READ_GRAPH", "--expires-in-days", "7"]);
        Assert.Equal(0, create.ExitCode);
        var key = KeyLine().Match(create.Output).Value;
        var id = KeyIdLine().Match(create.Output).Value;
        Assert.NotEmpty(key);

        // Used twice, so that the running server answers the second time from its cache.
        Assert.Equal(HttpStatusCode.OK, await MeWithKeyAsync(key));
        Assert.Equal(HttpStatusCode.OK, await MeWithKeyAsync(key));

        var list = await server.RunCliAsync(["keys", "list", "--user", account.Email]);
        Assert.Equal(0, list.ExitCode);
        Assert.Contains(id, list.Output);
        Assert.Contains("from cli", list.Output);
        Assert.Contains(key[..12], list.Output);
        Assert.DoesNotContain(key, list.Output);

        var revoke = await server.RunCliAsync(["keys", "revoke", "--user", account.Email, id]);
        Assert.Equal(0, revoke.ExitCode);
        // The command told the running server (PostgreSQL: NOTIFY; SQLite: the change feed file,
        // polled four times a second), well before its cache would have expired the key.
        await Eventually.TrueAsync(async () => await MeWithKeyAsync(key) == HttpStatusCode.Unauthorized, TimeSpan.FromSeconds(5), "the revoked key refused");

        var again = await server.RunCliAsync(["keys", "revoke", "--user", account.Email, id]);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("no active API key", again.Error);
    }

    private async Task<HttpStatusCode> MeWithKeyAsync(string key) => (await TestAccounts.CallMeWithKeyAsync(server.CreateClient(), key)).StatusCode;

    [Fact]
    public async Task Keys_create_refuses_unknown_scopes_and_unknown_users()
    {
        var account = await TestAccounts.SignUpAsync(server);

        var badScope = await server.RunCliAsync(["keys", "create", "--user", account.Email, "--name", "x", "--scope", "GOD_MODE"]);
        var badUser = await server.RunCliAsync(["keys", "create", "--user", TestAccounts.NewEmail(), "--name", "x", "--scope", "IDENTITY"]);

        Assert.Equal(1, badScope.ExitCode);
        Assert.Contains("Unknown scope 'GOD_MODE'", badScope.Error);
        Assert.Equal(1, badUser.ExitCode);
        Assert.Contains("No user has the e-mail address", badUser.Error);
        Assert.Equal(0, await server.WithDbAsync(db => db.ApiKeys.CountAsync(k => k.User!.Email == account.Email)));
    }

    [Fact]
    public async Task Openapi_export_writes_the_document_served_at_openapi_v1_json()
    {
        var file = Path.Combine(Path.GetTempPath(), $"latchkey-openapi-{Guid.NewGuid():N}.json");
        try
        {
            var run = await server.RunCliAsync(["openapi", "export", file]);

            Assert.Equal(0, run.ExitCode);
            using var exported = JsonDocument.Parse(await File.ReadAllTextAsync(file));
            using var served = JsonDocument.Parse(await server.CreateClient().GetStringAsync("/openapi/v1.json"));
            Assert.Equal(
                served.RootElement.GetProperty("paths").EnumerateObject().Select(p => p.Name).Order(),
                exported.RootElement.GetProperty("paths").EnumerateObject().Select(p => p.Name).Order());
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Users_list_and_show_describe_accounts_and_their_roles_as_tables_and_json()
    {
        var account = await TestAccounts.SignUpAsync(server);
        Assert.Equal(0, (await server.RunCliAsync(["keys", "create", "--user", account.Email, "--name", "ci", "--scope", "IDENTITY"])).ExitCode);

        var granted = await server.RunCliAsync(["users", "grant-admin", account.Email]);
        var again = await server.RunCliAsync(["users", "grant-admin", account.Email]);
        var shown = await server.RunCliAsync(["users", "show", account.Email, "--json"]);
        var listed = await server.RunCliAsync(["users", "list", "--search", account.Email[..12].ToUpperInvariant(), "--json"]);
        var table = await server.RunCliAsync(["users", "list", "--search", account.Email]);
        var revoked = await server.RunCliAsync(["users", "revoke-admin", account.Email]);
        var after = await server.RunCliAsync(["users", "show", account.Email]);

        Assert.Equal(0, granted.ExitCode);
        Assert.Contains("is now an administrator", granted.Output);
        Assert.Contains("already", again.Output);
        using (var details = JsonDocument.Parse(shown.Output))
        {
            var user = details.RootElement.GetProperty("user");
            Assert.Equal(account.Email, user.GetProperty("email").GetString());
            Assert.Equal("active", user.GetProperty("status").GetString());
            Assert.Equal(["admin"], user.GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
            Assert.Equal(1, details.RootElement.GetProperty("active_api_keys").GetInt32());
        }
        using (var list = JsonDocument.Parse(listed.Output))
        {
            Assert.Contains(list.RootElement.EnumerateArray(), u => u.GetProperty("email").GetString() == account.Email);
        }
        Assert.Matches($@"{Regex.Escape(account.Email)} +.+ active +admin", table.Output);
        Assert.Equal(0, revoked.ExitCode);
        Assert.Contains("Roles           : none", after.Output);
        Assert.Equal(1, (await server.RunCliAsync(["users", "show", TestAccounts.NewEmail()])).ExitCode);
    }

    [Fact]
    public async Task Users_reset_password_prints_a_new_password_once_that_replaces_the_old_one()
    {
        var account = await TestAccounts.SignUpAsync(server);

        var run = await server.RunCliAsync(["users", "reset-password", account.Email]);
        var weak = await server.RunCliAsync(["users", "reset-password", account.Email, "--password-stdin"], input: "short");

        Assert.Equal(0, run.ExitCode);
        var password = PasswordLine().Match(run.Output).Groups[1].Value;
        Assert.Equal(24, password.Length);
        Assert.Equal(1, weak.ExitCode);
        Assert.Contains("The password was not changed", weak.Error);
        Assert.Equal(HttpStatusCode.Redirect, (await SignInAsync(account.Email, password)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await SignInAsync(account.Email, account.Password)).StatusCode);
    }

    [Fact]
    public async Task Users_disable_refuses_every_way_in_and_enable_lets_the_account_back()
    {
        var issued = await OAuthClient.IssueAsync(server);
        var user = issued.User;
        var accessToken = issued.Tokens.GetProperty("access_token").GetString()!;
        var refreshToken = issued.Tokens.GetProperty("refresh_token").GetString()!;
        var key = KeyLine().Match((await server.RunCliAsync(["keys", "create", "--user", user.Email, "--name", "bot", "--scope", "IDENTITY"])).Output).Value;
        var client = server.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await TestAccounts.CallMeWithKeyAsync(client, key)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await OAuthClient.CallMeAsync(client, accessToken)).StatusCode);

        var disabled = await server.RunCliAsync(["users", "disable", user.Email]);

        Assert.True(disabled.ExitCode == 0, disabled.Error);
        Assert.Contains("is disabled", disabled.Output);
        // The command tells the running server (PostgreSQL: NOTIFY; SQLite: the change feed, polled four times a second).
        await Eventually.TrueAsync(async () => await MeWithKeyAsync(key) == HttpStatusCode.Unauthorized, TimeSpan.FromSeconds(5), "the disabled account's key refused");
        await Eventually.TrueAsync(async () => (await OAuthClient.CallMeAsync(client, accessToken)).StatusCode == HttpStatusCode.Unauthorized,
            TimeSpan.FromSeconds(5), "the disabled account's access token refused");
        await Eventually.TrueAsync(async () => (await user.Session.GetAsync("/profile/api-keys")).StatusCode == HttpStatusCode.Redirect,
            TimeSpan.FromSeconds(5), "the disabled account's browser session ended");
        var refresh = await OAuthClient.TokenAsync(client, OAuthClient.RefreshParameters(issued.App, refreshToken));
        Assert.Equal(HttpStatusCode.BadRequest, refresh.StatusCode);
        Assert.Contains("invalid_grant", await refresh.Content.ReadAsStringAsync());
        // Told only to whoever knows the password.
        Assert.Contains("This account is disabled", await (await SignInAsync(user.Email, user.Password)).Content.ReadAsStringAsync());
        var wrong = await (await SignInAsync(user.Email, "not the password at all")).Content.ReadAsStringAsync();
        Assert.DoesNotContain("disabled", wrong);
        Assert.Contains("do not match an account", wrong);
        // A password reset does not enable it.
        Assert.Equal(0, (await server.RunCliAsync(["users", "reset-password", user.Email])).ExitCode);
        Assert.Contains("\"status\": \"disabled\"", (await server.RunCliAsync(["users", "show", user.Email, "--json"])).Output);
        var events = await server.WithDbAsync(db => db.SecurityEvents.Where(e => e.Type == "account_disabled").Select(e => e.AccountId).ToListAsync());
        Assert.Contains(await server.WithDbAsync(db => db.Users.Where(u => u.Email == user.Email).Select(u => u.Id).SingleAsync()), events);

        var enabled = await server.RunCliAsync(["users", "enable", user.Email]);

        Assert.Equal(0, enabled.ExitCode);
        await Eventually.TrueAsync(async () => await MeWithKeyAsync(key) == HttpStatusCode.OK, TimeSpan.FromSeconds(5), "the enabled account's key accepted");
        var reset = await server.RunCliAsync(["users", "reset-password", user.Email]);
        Assert.Equal(HttpStatusCode.Redirect, (await SignInAsync(user.Email, PasswordLine().Match(reset.Output).Groups[1].Value)).StatusCode);
        Assert.Contains("already enabled", (await server.RunCliAsync(["users", "enable", user.Email])).Output);
    }

    [Fact]
    public async Task Users_delete_shows_what_goes_then_with_yes_removes_the_account_and_all_it_owns()
    {
        var issued = await OAuthClient.IssueAsync(server);
        var owner = issued.Owner;
        var key = KeyLine().Match((await server.RunCliAsync(["keys", "create", "--user", owner.Email, "--name", "bot", "--scope", "IDENTITY"])).Output).Value;
        var ownerId = await server.WithDbAsync(db => db.Users.Where(u => u.Email == owner.Email).Select(u => u.Id).SingleAsync());
        await server.WithDbAsync(db =>
        {
            db.WebhookEndpoints.Add(new Latchkey.Features.Webhooks.WebhookEndpoint
            {
                Id = $"wh_{Guid.NewGuid():N}", AccountId = ownerId, Url = "https://hooks.example.com/latchkey", Events = "credential.deleted", SecretCiphertext = "unused",
            });
            db.McpServers.Add(new Latchkey.Features.Mcp.McpServer
            {
                Id = $"mcp_{Guid.NewGuid():N}"[..20], OwnerId = ownerId, Name = "Files", UpstreamUrl = "https://mcp.example.com/mcp",
                CreatedAt = DateTimeOffset.UtcNow, UpdatedAt = DateTimeOffset.UtcNow,
            });
            return db.SaveChangesAsync();
        });
        var client = server.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await OAuthClient.CallMeAsync(client, issued.AccessToken)).StatusCode);

        var plan = await server.RunCliAsync(["users", "delete", owner.Email]);

        Assert.True(plan.ExitCode == 0, plan.Error);
        Assert.Contains($"Deleting {owner.Email}", plan.Output);
        Assert.Contains("1 API key(s)", plan.Output);
        Assert.True(plan.Output.Contains("1 OAuth app(s) it registered, deleted with their tokens (1 other account(s) signed in to them lose that access)", StringComparison.Ordinal), plan.Output);
        Assert.Contains("1 webhook endpoint(s)", plan.Output);
        Assert.Contains("1 MCP server(s) and 0 virtual server(s)", plan.Output);
        Assert.Contains("Nothing was deleted", plan.Output);
        Assert.Equal(HttpStatusCode.OK, await MeWithKeyAsync(key));

        var deleted = await server.RunCliAsync(["users", "delete", owner.Email, "--yes", "--json"]);

        Assert.True(deleted.ExitCode == 0, deleted.Error);
        using (var body = JsonDocument.Parse(deleted.Output))
        {
            Assert.True(body.RootElement.GetProperty("deleted").GetBoolean());
            Assert.Equal(1, body.RootElement.GetProperty("removes").GetProperty("api_keys").GetInt32());
            Assert.Equal(1, body.RootElement.GetProperty("removes").GetProperty("owned_apps").GetInt32());
        }
        await Eventually.TrueAsync(async () => await MeWithKeyAsync(key) == HttpStatusCode.Unauthorized, TimeSpan.FromSeconds(5), "the deleted account's key refused");
        // The app went with its owner, and with it the other user's token for it.
        await Eventually.TrueAsync(async () => (await OAuthClient.CallMeAsync(client, issued.AccessToken)).StatusCode == HttpStatusCode.Unauthorized,
            TimeSpan.FromSeconds(5), "a token of the deleted owner's app refused");
        // The browser session ends at its next request.
        await Eventually.TrueAsync(async () => (await owner.Session.GetAsync("/profile/api-keys")).StatusCode == HttpStatusCode.Redirect,
            TimeSpan.FromSeconds(5), "the deleted account's session ended");
        Assert.Equal(0, await server.WithDbAsync(db => db.Users.CountAsync(u => u.Id == ownerId)));
        Assert.Equal(0, await server.WithDbAsync(db => db.ApiKeys.CountAsync(k => k.UserId == ownerId)));
        Assert.Equal(0, await server.WithDbAsync(db => db.OAuthApplications.CountAsync(a => a.ClientId == issued.App.ClientId)));
        Assert.Equal(0, await server.WithDbAsync(db => db.WebhookEndpoints.CountAsync(e => e.AccountId == ownerId)));
        Assert.Equal(0, await server.WithDbAsync(db => db.McpServers.CountAsync(s => s.OwnerId == ownerId)));
        // The security log keeps who deleted it (until its retention ends).
        var events = await server.WithDbAsync(db => db.SecurityEvents.Where(e => e.AccountId == ownerId && e.Type == "account_deleted").Select(e => e.Detail).ToListAsync());
        Assert.Contains(events, detail => detail!.Contains(owner.Email, StringComparison.Ordinal) && detail.Contains("latchkey users delete", StringComparison.Ordinal));
        Assert.Equal(1, (await server.RunCliAsync(["users", "show", owner.Email])).ExitCode);
        // The user of the app is untouched.
        Assert.Equal(HttpStatusCode.Redirect, (await SignInAsync(issued.User.Email, issued.User.Password)).StatusCode);
    }

    private Task<HttpResponseMessage> SignInAsync(string email, string password) => TestAccounts.SignInAsync(server.CreateClient(), email, password);

    [Fact]
    public async Task Usage_errors_exit_2_with_what_was_wrong()
    {
        var missing = await server.RunCliAsync(["keys", "create", "--name", "x"]);
        var noSubcommand = await server.RunCliAsync(["users"]);
        var unknownOption = await server.RunCliAsync(["keys", "list", "--user", "a@example.com", "--colour"]);
        var badValue = await server.RunCliAsync(["keys", "create", "--user", "a@example.com", "--name", "x", "--scope", "IDENTITY", "--expires-in-days", "0"]);
        var unknown = await server.RunCliAsync(["frobnicate"]);

        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("--user", missing.Error);
        Assert.Equal(2, noSubcommand.ExitCode);
        Assert.Contains("Required command was not provided", noSubcommand.Error);
        Assert.Equal(2, unknownOption.ExitCode);
        Assert.Contains("--colour", unknownOption.Error);
        Assert.Equal(2, badValue.ExitCode);
        Assert.Contains("--expires-in-days must be between 1 and 3650", badValue.Error);
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("Unknown command 'frobnicate'", unknown.Error);
    }

    [Fact]
    public async Task Help_lists_what_the_options_refer_to()
    {
        var keys = await server.RunCliAsync(["keys", "create", "--help"]);
        var apps = await server.RunCliAsync(["apps", "create", "--help"]);
        var providers = await server.RunCliAsync(["providers", "create", "--help"]);

        Assert.Equal(0, keys.ExitCode);
        Assert.Matches(@"\n  IDENTITY +Read your user id, e-mail address and time zone", keys.Output);
        Assert.Contains("READ_SECURITY_EVENTS", keys.Output);
        Assert.DoesNotContain("openid", keys.Output);
        Assert.DoesNotContain("keys create --help", keys.Output);
        Assert.Equal(0, apps.ExitCode);
        Assert.Matches(@"\n  openid +Sign you in", apps.Output);
        Assert.Contains("USE_TOOLS", apps.Output);
        Assert.Equal(0, providers.ExitCode);
        Assert.Matches(@"\n  github +GitHub", providers.Output);
        Assert.Matches(@"\n  custom +Any other OAuth 2.0 provider", providers.Output);
    }

    [Fact]
    public async Task Every_command_has_help()
    {
        foreach (var command in new[] { "serve", "db migrate", "users create", "keys create", "keys list", "keys revoke", "openapi export",
                     "apps create", "apps list", "apps disable", "apps enable", "apps rotate-secret", "cleanup", "test-client" })
        {
            var run = await server.RunCliAsync([.. command.Split(' '), "--help"]);
            Assert.Equal(0, run.ExitCode);
            Assert.Contains("Usage:", run.Output);
        }
    }

    [Fact]
    public async Task Apps_can_be_registered_listed_disabled_and_rotated_from_the_command_line()
    {
        var owner = await TestAccounts.SignUpAsync(server);

        var create = await server.RunCliAsync(["apps", "create", "--owner", owner.Email, "--name", "CLI App", "--redirect-uri", "https://cli.example.com/cb",
            "--scope", "IDENTITY", "--scope", "openid", "--confidential"]);
        Assert.Equal(0, create.ExitCode);
        var clientId = Regex.Match(create.Output, @"client_id:\s+(\S+)").Groups[1].Value;
        var secret = Regex.Match(create.Output, @"client_secret:\s+(\S+)").Groups[1].Value;
        Assert.StartsWith("lk_client_", clientId);
        Assert.StartsWith("lk_cs_", secret);

        var list = await server.RunCliAsync(["apps", "list", "--owner", owner.Email]);
        Assert.Contains(clientId, list.Output);
        Assert.Contains("CLI App", list.Output);
        Assert.DoesNotContain(secret, list.Output);

        Assert.Equal(0, (await server.RunCliAsync(["apps", "disable", clientId])).ExitCode);
        Assert.False(await server.WithDbAsync(db => db.OAuthApplications.Where(a => a.ClientId == clientId).Select(a => a.Enabled).SingleAsync()));
        Assert.Equal(0, (await server.RunCliAsync(["apps", "enable", clientId])).ExitCode);

        var rotate = await server.RunCliAsync(["apps", "rotate-secret", clientId]);
        Assert.Equal(0, rotate.ExitCode);
        Assert.DoesNotContain(secret, rotate.Output);

        var unknown = await server.RunCliAsync(["apps", "disable", "lk_client_nope"]);
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("No app has the client id", unknown.Error);
        var bad = await server.RunCliAsync(["apps", "create", "--owner", owner.Email, "--name", "Bad", "--redirect-uri", "http://evil.example/cb", "--scope", "IDENTITY"]);
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("must use https", bad.Error);
    }

    [Fact]
    public async Task Test_client_walks_a_running_server_through_the_whole_flow()
    {
        var user = await TestAccounts.SignUpAsync(server);
        var stateFile = Path.Combine(Path.GetTempPath(), $"latchkey-test-client-{Guid.NewGuid():N}.json");
        var output = new WatchingWriter("/auth/authorize?");
        var error = new StringWriter();
        try
        {
            var run = Latchkey.Cli.LatchkeyCommandLine.InvokeAsync(
                ["test-client", "--server", server.BaseAddress.AbsoluteUri, "--scope", "openid IDENTITY", "--state-file", stateFile, "--timeout", "60"],
                output: output, error: error);

            // The person at the browser: open the printed address, approve, get sent to the loopback redirect.
            var printed = await output.Seen.WaitAsync(TimeSpan.FromSeconds(30));
            var authorizeUrl = new Uri(printed.Trim());
            var outcome = await OAuthClient.AuthorizeAsync(user.Session, authorizeUrl.PathAndQuery);
            Assert.Equal("127.0.0.1", outcome.Redirect!.Host);
            using (var browser = new HttpClient())
            {
                await browser.GetAsync(outcome.Redirect);
            }

            Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains("The server passed every step.", output.ToString());
            Assert.Contains(user.Email, output.ToString());
            Assert.Contains("/me with the revoked token: 401", output.ToString());
            Assert.Contains(server.BaseAddress.AbsoluteUri, await File.ReadAllTextAsync(stateFile));
        }
        finally
        {
            File.Delete(stateFile);
        }
    }

    [Fact]
    public async Task Test_client_signs_in_with_the_device_flow_once_someone_approves_the_code()
    {
        var user = await TestAccounts.SignUpAsync(server);
        var stateFile = Path.Combine(Path.GetTempPath(), $"latchkey-test-client-{Guid.NewGuid():N}.json");
        var output = new WatchingWriter("/device?user_code=");
        var error = new StringWriter();
        try
        {
            var run = Latchkey.Cli.LatchkeyCommandLine.InvokeAsync(
                ["test-client", "--device", "--open", "--server", server.BaseAddress.AbsoluteUri, "--scope", "IDENTITY", "--state-file", stateFile, "--timeout", "60"],
                output: output, error: error);

            // The person at any browser: open the printed link (signed in), check the code, approve.
            var printed = await output.Seen.WaitAsync(TimeSpan.FromSeconds(30));
            var verification = new Uri(printed.Trim());
            var page = await user.Session.GetAsync(verification.PathAndQuery);
            var form = OAuthClient.HiddenInputs(await page.Content.ReadAsStringAsync());
            form["decision"] = "approve";
            Assert.Equal(System.Net.HttpStatusCode.Redirect, (await user.Session.PostAsync("/device", new FormUrlEncodedContent(form))).StatusCode);

            Assert.True(await run.WaitAsync(TimeSpan.FromSeconds(60)) == 0, error.ToString());
            Assert.Contains("and enter the code", output.ToString());
            // --open on a machine without a desktop (as CI is) says so once; the address was printed anyway.
            var headless = string.IsNullOrEmpty(Environment.GetEnvironmentVariable("DISPLAY")) && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("WAYLAND_DISPLAY"));
            Assert.Equal(headless ? 1 : 0, Regex.Count(output.ToString(), "No browser was opened: "));
            Assert.Contains("The server passed every step.", output.ToString());
            Assert.Contains(user.Email, output.ToString());
            Assert.Contains(server.BaseAddress.AbsoluteUri + "#device", await File.ReadAllTextAsync(stateFile));
        }
        finally
        {
            File.Delete(stateFile);
        }
    }

    /// <summary>Captures output and signals when a line containing <c>marker</c> is written.</summary>
    private sealed class WatchingWriter(string marker) : StringWriter
    {
        private readonly TaskCompletionSource<string> _seen = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<string> Seen => _seen.Task;

        public override void WriteLine(string? value)
        {
            base.WriteLine(value);
            if (value is not null && value.Contains(marker, StringComparison.Ordinal))
            {
                _seen.TrySetResult(value);
            }
        }

        public override Task WriteLineAsync(string? value)
        {
            WriteLine(value);
            return Task.CompletedTask;
        }
    }

    [GeneratedRegex(@"Password: (\S+)")]
    private static partial Regex PasswordLine();

    [GeneratedRegex(@"lk_ak_[0-9A-Za-z]{49}")]
    private static partial Regex KeyLine();

    [GeneratedRegex(@"key_[0-9A-Za-z]{20}")]
    private static partial Regex KeyIdLine();
}

public sealed class CliTestsOnSqlite(SqliteServer server) : CliTests(server), IClassFixture<SqliteServer>;

public sealed class CliTestsOnPostgres(PostgresServer server) : CliTests(server), IClassFixture<PostgresServer>;

public sealed class CliConfigurationTests
{
    [Fact]
    public async Task A_bad_configuration_exits_2_with_a_clear_message()
    {
        var error = new StringWriter();
        var exit = await Latchkey.Cli.LatchkeyCommandLine.InvokeAsync(
            ["db", "migrate"],
            builder => Microsoft.Extensions.Configuration.MemoryConfigurationBuilderExtensions.AddInMemoryCollection(builder.Configuration,
                new Dictionary<string, string?> { ["Storage:Provider"] = "oracle" }),
            new StringWriter(), error);

        Assert.Equal(2, exit);
        Assert.Contains("Configuration error", error.ToString());
        Assert.Contains("must be 'sqlite' or 'postgres'", error.ToString());
    }
}

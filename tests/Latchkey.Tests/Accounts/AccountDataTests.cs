using System.Net;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Tests.Accounts;

/// <summary>The account's own export and deletion (<c>/profile/account</c>), on each database.</summary>
public abstract class AccountDataTests(LatchkeyServerFixture server)
{
    [Fact]
    public async Task The_export_holds_the_accounts_data_and_no_secret()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var (key, keyId) = await TestAccounts.CreateKeyAsync(account, "IDENTITY");
        await Eventually.TrueAsync(async () => await server.WithDbAsync(db => db.SecurityEvents.CountAsync(e => e.SubjectId == keyId)) == 1,
            TimeSpan.FromSeconds(5), "the key's event written");

        var response = await account.Session.GetAsync("/profile/account/Export");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.StartsWith("attachment", response.Content.Headers.ContentDisposition?.ToString());
        Assert.Contains("no-store", response.Headers.CacheControl?.ToString());
        var body = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain(key, body);
        Assert.DoesNotContain("secret_hash", body);
        Assert.DoesNotContain("password_hash", body, StringComparison.OrdinalIgnoreCase);
        using var export = JsonDocument.Parse(body);
        var root = export.RootElement;
        Assert.Equal(account.Email, root.GetProperty("account").GetProperty("email").GetString());
        var apiKey = Assert.Single(root.GetProperty("api_keys").EnumerateArray());
        Assert.Equal(keyId, apiKey.GetProperty("id").GetString());
        Assert.Equal("IDENTITY", apiKey.GetProperty("scopes").GetString());
        Assert.Contains(root.GetProperty("security_events").EnumerateArray(), e => e.GetProperty("type").GetString() == "api_key_created");
        var signIn = root.GetProperty("sign_in");
        Assert.True(signIn.GetProperty("has_password").GetBoolean());
        Assert.False(signIn.GetProperty("two_factor").GetProperty("enabled").GetBoolean());
        Assert.Empty(signIn.GetProperty("passkeys").EnumerateArray());
        Assert.NotEmpty(signIn.GetProperty("sessions").EnumerateArray());
        Assert.Equal(HttpStatusCode.Redirect, (await server.CreateClient().GetAsync("/profile/account/Export")).StatusCode);
    }

    [Fact]
    public async Task Deleting_ones_own_account_needs_the_password_and_then_removes_it()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var (key, _) = await TestAccounts.CreateKeyAsync(account, "IDENTITY");

        var wrong = await Browser.SubmitFormAsync(account.Session, "/profile/account/Delete", new Dictionary<string, string> { ["Password"] = "not my password at all" });
        Assert.Equal(HttpStatusCode.BadRequest, wrong.StatusCode);
        Assert.Contains("nothing was deleted", await wrong.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await TestAccounts.CallMeWithKeyAsync(server.CreateClient(), key)).StatusCode);

        var deleted = await Browser.SubmitFormAsync(account.Session, "/profile/account/Delete", new Dictionary<string, string> { ["Password"] = account.Password });

        Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        Assert.Contains("Your account is deleted", await deleted.Content.ReadAsStringAsync());
        Assert.Equal(0, await server.WithDbAsync(db => db.Users.CountAsync(u => u.Email == account.Email)));
        Assert.Equal(HttpStatusCode.Unauthorized, (await TestAccounts.CallMeWithKeyAsync(server.CreateClient(), key)).StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, (await account.Session.GetAsync("/profile/account")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await TestAccounts.SignInAsync(server.CreateClient(), account.Email, account.Password)).StatusCode);
    }
}

public sealed class AccountDataTestsOnSqlite(SqliteServer server) : AccountDataTests(server), IClassFixture<SqliteServer>;

public sealed class AccountDataTestsOnPostgres(PostgresServer server) : AccountDataTests(server), IClassFixture<PostgresServer>;

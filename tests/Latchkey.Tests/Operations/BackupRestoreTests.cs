using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Npgsql;

namespace Latchkey.Tests.Operations;

/// <summary>
/// A populated database is backed up while the server runs, destroyed, restored, and the server
/// started again on it: everything issued before the backup still works. SQLite goes through
/// <c>latchkey backup</c> / <c>latchkey restore</c>; PostgreSQL through the documented pg_dump and
/// pg_restore commands.
/// </summary>
public abstract class BackupRestoreTests(LatchkeyServerFixture server) : IAsyncLifetime
{
    private TestOAuthProvider _provider = null!;

    protected string Directory { get; } = Path.Combine(Path.GetTempPath(), "latchkey-tests", "backups-" + Guid.NewGuid().ToString("N"));

    public async Task InitializeAsync()
    {
        System.IO.Directory.CreateDirectory(Directory);
        _provider = await TestOAuthProvider.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _provider.DisposeAsync();
        System.IO.Directory.Delete(Directory, recursive: true);
    }

    /// <summary>Backs the running server's database up to <paramref name="file"/>.</summary>
    protected abstract Task BackUpAsync(string file);

    [Fact]
    public async Task The_start_ups_newest_migration_is_ef_cores_newest_migration()
    {
        // The up-to-date check at start compares with these constants (scripts/update-model.sh writes them).
        var expected = server.Provider == Latchkey.Storage.StorageProvider.Postgres
            ? Latchkey.Storage.LatestMigrations.Postgres
            : Latchkey.Storage.LatestMigrations.Sqlite;
        Assert.Equal(await server.WithDbAsync(db => Task.FromResult(db.Database.GetMigrations().Last())), expected);
    }

    /// <summary>With the server stopped: destroys its database and restores <paramref name="file"/> in its place.</summary>
    protected abstract Task DestroyAndRestoreAsync(string file);

    [Fact]
    public async Task A_restored_backup_keeps_every_token_key_credential_and_password_working()
    {
        // A user who authorized an app (access and refresh token from the code flow), an API key,
        // and a broker credential from a real flow, all made through the HTTP API.
        var issued = await OAuthClient.IssueAsync(server);
        var caller = await TestBroker.CallerAsync(server);
        var credentialId = await TestBroker.ConnectedCredentialAsync(caller, _provider);
        var providerToken = _provider.LastIssuedAccessToken;
        var file = Path.Combine(Directory, "latchkey.backup");

        await BackUpAsync(file);
        // Made after the backup, so the restore must lose it.
        var (keyAfterBackup, _) = await TestAccounts.CreateKeyAsync(caller.Account, "IDENTITY");

        await server.RestartAsync(() => DestroyAndRestoreAsync(file));

        var client = server.CreateClient();
        Assert.True((await OAuthClient.IntrospectAsync(client, issued.App, issued.AccessToken)).GetProperty("active").GetBoolean());
        Assert.Equal(HttpStatusCode.OK, (await OAuthClient.CallMeAsync(client, issued.AccessToken)).StatusCode);

        var refresh = await OAuthClient.TokenAsync(client, OAuthClient.RefreshParameters(issued.App, issued.RefreshToken));
        var refreshed = await refresh.Content.ReadAsStringAsync();
        Assert.True(refresh.StatusCode == HttpStatusCode.OK, refreshed);
        var newAccessToken = JsonDocument.Parse(refreshed).RootElement.GetProperty("access_token").GetString()!;
        Assert.Equal(HttpStatusCode.OK, (await OAuthClient.CallMeAsync(client, newAccessToken)).StatusCode);

        var me = await CallMeWithKeyAsync(caller.ApiKey);
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        Assert.Equal(caller.AccountEmail, JsonDocument.Parse(await me.Content.ReadAsStringAsync()).RootElement.GetProperty("email").GetString());
        Assert.Equal(HttpStatusCode.Unauthorized, (await CallMeWithKeyAsync(keyAfterBackup)).StatusCode);

        using var broker = server.CreateClient();
        broker.DefaultRequestHeaders.Add("X-API-Key", caller.ApiKey);
        var token = await broker.PostAsJsonAsync($"/mcp/credentials/{credentialId}/access-token", new { });
        var tokenBody = await token.Content.ReadAsStringAsync();
        Assert.True(token.StatusCode == HttpStatusCode.OK, tokenBody);
        Assert.Equal(providerToken, JsonDocument.Parse(tokenBody).RootElement.GetProperty("access_token").GetString());

        // The password still signs in, and the cookie from before the backup still reads (the Data Protection keys came back too).
        var browser = server.CreateClient();
        var signIn = await Browser.SubmitFormAsync(browser, "/account/sign-in", new Dictionary<string, string>
        {
            ["Input.Email"] = issued.User.Email,
            ["Input.Password"] = issued.User.Password,
        });
        Assert.Equal(HttpStatusCode.Redirect, signIn.StatusCode);
        Assert.Contains($"signed in as <strong>{issued.User.Email}</strong>", await browser.GetStringAsync("/"));
        Assert.Contains($"signed in as <strong>{issued.User.Email}</strong>", await issued.User.Session.GetStringAsync("/"));
    }

    protected Task<HttpResponseMessage> CallMeWithKeyAsync(string key) => TestAccounts.CallMeWithKeyAsync(server.CreateClient(), key);
}

public sealed class BackupRestoreTestsOnSqlite(SqliteServer server) : BackupRestoreTests(server), IClassFixture<SqliteServer>
{
    protected override async Task BackUpAsync(string file)
    {
        var run = await server.RunCliAsync(["backup", file]);

        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Contains($"Wrote {file}", run.Output);
        Assert.Contains("integrity ok", run.Output);
        Assert.Contains(await LatestMigrationAsync(), run.Output);
        Assert.Matches(@"broker credentials\s+[1-9]", run.Output);
        Assert.Contains($"the master key (the key file {server.VaultKeyFile})", run.Output);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }
    }

    protected override async Task DestroyAndRestoreAsync(string file)
    {
        await File.WriteAllTextAsync(server.DatabaseFile, "the disk ate it");

        var run = await server.RunCliAsync(["restore", file]);

        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Contains("integrity ok, a Latchkey database", run.Output);
        Assert.Contains($"Restored {server.DatabaseFile}", run.Output);
        Assert.Contains("The master key is not in the database", run.Output);
        // The destroyed file is kept as it was, in case the restore was the mistake.
        var kept = Assert.Single(System.IO.Directory.GetFiles(Path.GetDirectoryName(server.DatabaseFile)!, "latchkey.db.before-restore-*"));
        Assert.Equal("the disk ate it", await File.ReadAllTextAsync(kept));
        File.Delete(kept);
    }

    [Fact]
    public async Task Backup_is_consistent_while_the_server_keeps_writing()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var file = Path.Combine(Directory, "busy.db");
        var writes = Task.WhenAll(Enumerable.Range(0, 20).Select(_ => TestAccounts.CreateKeyAsync(account, "IDENTITY")));

        var run = await server.RunCliAsync(["backup", "--output", file]);
        await writes;

        Assert.True(run.ExitCode == 0, run.Error);
        await using var backup = new SqliteConnection($"Data Source={file};Mode=ReadOnly;Pooling=False");
        await backup.OpenAsync();
        await using var check = backup.CreateCommand();
        check.CommandText = "PRAGMA integrity_check;";
        Assert.Equal("ok", await check.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Backup_refuses_to_overwrite_an_existing_file_unless_forced()
    {
        var file = Path.Combine(Directory, "existing.db");
        await File.WriteAllTextAsync(file, "yesterday's backup");

        var refused = await server.RunCliAsync(["backup", file]);

        Assert.Equal(1, refused.ExitCode);
        Assert.Contains($"{file} already exists; pass --force", refused.Error);
        Assert.Equal("yesterday's backup", await File.ReadAllTextAsync(file));

        var forced = await server.RunCliAsync(["backup", file, "--force"]);

        Assert.True(forced.ExitCode == 0, forced.Error);
        Assert.Contains($"Wrote {file}", forced.Output);
        Assert.Empty(System.IO.Directory.GetFiles(Directory, "*.tmp", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Restore_refuses_a_file_that_is_not_a_database_and_changes_nothing()
    {
        var file = Path.Combine(Directory, "notes.txt");
        await File.WriteAllTextAsync(file, string.Concat(Enumerable.Repeat("not a database at all ", 200)));

        var run = await server.RunCliAsync(["restore", file]);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains($"{file} is not a SQLite database, or is damaged", run.Error);
        await AssertNothingChangedAsync();
    }

    [Fact]
    public async Task Restore_refuses_a_damaged_backup()
    {
        var file = Path.Combine(Directory, "damaged.db");
        Assert.Equal(0, (await server.RunCliAsync(["backup", file])).ExitCode);
        // Scribble over the middle of the file, where the tables' pages are.
        var bytes = await File.ReadAllBytesAsync(file);
        Array.Fill(bytes, (byte)0x5A, bytes.Length / 3, bytes.Length / 3);
        await File.WriteAllBytesAsync(file, bytes);

        var run = await server.RunCliAsync(["restore", file]);

        Assert.Equal(1, run.ExitCode);
        Assert.Matches($"{System.Text.RegularExpressions.Regex.Escape(file)} (failed SQLite's integrity check|is not a SQLite database, or is damaged)", run.Error);
        Assert.DoesNotContain("   at ", run.Error);
        await AssertNothingChangedAsync();
    }

    [Fact]
    public async Task Restore_refuses_a_sqlite_database_that_is_not_latchkeys()
    {
        var file = Path.Combine(Directory, "other.db");
        await ExecuteAsync(file, "CREATE TABLE recipes (name TEXT);");

        var run = await server.RunCliAsync(["restore", file]);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("not a Latchkey database", run.Error);
        await AssertNothingChangedAsync();
    }

    [Fact]
    public async Task Restore_refuses_a_backup_from_a_newer_latchkey()
    {
        var file = Path.Combine(Directory, "future.db");
        Assert.Equal(0, (await server.RunCliAsync(["backup", file])).ExitCode);
        await ExecuteAsync(file, "INSERT INTO __EFMigrationsHistory (MigrationId, ProductVersion) VALUES ('29991231000000_FromTheFuture', '99.0.0');");

        var run = await server.RunCliAsync(["restore", file]);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("made by a newer Latchkey", run.Error);
        Assert.Contains("29991231000000_FromTheFuture", run.Error);
        await AssertNothingChangedAsync();
    }

    [Fact]
    public async Task Restore_refuses_while_the_server_has_the_database_open()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var file = Path.Combine(Directory, "good.db");
        Assert.Equal(0, (await server.RunCliAsync(["backup", file])).ExitCode);
        var (key, _) = await TestAccounts.CreateKeyAsync(account, "IDENTITY");
        // As after a long idle spell: the server's pool has closed every connection it had.
        server.ClearOwnPool();

        var run = await server.RunCliAsync(["restore", file]);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("is in use, most likely by a running Latchkey server", run.Error);
        Assert.Contains("Nothing was changed", run.Error);
        await AssertNothingChangedAsync();
        Assert.Equal(HttpStatusCode.OK, (await CallMeWithKeyAsync(key)).StatusCode);
    }

    [Fact]
    public async Task Restore_keeps_the_replaced_database_beside_it_as_a_readable_copy()
    {
        var file = Path.Combine(Directory, "before.db");
        Assert.Equal(0, (await server.RunCliAsync(["backup", file])).ExitCode);
        var account = await TestAccounts.SignUpAsync(server);
        CliRun? run = null;

        await server.RestartAsync(async () => run = await server.RunCliAsync(["restore", file]));

        Assert.True(run!.ExitCode == 0, run.Error);
        var folder = Path.GetDirectoryName(server.DatabaseFile)!;
        var kept = Assert.Single(System.IO.Directory.GetFiles(folder, "latchkey.db.before-restore-*"));
        Assert.Contains($"Kept the replaced database as {kept}", run.Output);
        Assert.False(await server.WithDbAsync(db => db.Users.AnyAsync(u => u.Email == account.Email)));
        await using (var copy = new SqliteConnection($"Data Source={kept};Mode=ReadOnly;Pooling=False"))
        {
            await copy.OpenAsync();
            await using var find = copy.CreateCommand();
            find.CommandText = "SELECT count(*) FROM AspNetUsers WHERE Email = $email;";
            find.Parameters.AddWithValue("$email", account.Email);
            Assert.Equal(1L, await find.ExecuteScalarAsync());
        }
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(kept));
        }
        File.Delete(kept);
    }

    [Fact]
    public async Task Restore_of_a_backup_from_an_older_latchkey_migrates_it_to_this_build()
    {
        var file = Path.Combine(Directory, "older.db");
        Assert.Equal(0, (await server.RunCliAsync(["backup", file])).ExitCode);
        // Take the backup one migration back, as the previous release would have written it.
        var migrations = await server.WithDbAsync(db => Task.FromResult(db.Database.GetMigrations().ToList()));
        var downgrade = await server.WithDbAsync(db => Task.FromResult(
            db.GetService<Microsoft.EntityFrameworkCore.Migrations.IMigrator>().GenerateScript(fromMigration: migrations[^1], toMigration: migrations[^2])));
        await ExecuteAsync(file, downgrade);
        CliRun? run = null;

        await server.RestartAsync(async () => run = await server.RunCliAsync(["restore", file]));

        Assert.True(run!.ExitCode == 0, run.Error);
        Assert.Contains($"Schema: {migrations[^2]}", run.Output);
        Assert.Contains($"applied 1 migration(s) the backup predates: {migrations[^1]}", run.Output);
        Assert.Empty(await server.WithDbAsync(async db => (await db.Database.GetPendingMigrationsAsync()).ToList()));
        Assert.Equal("Healthy", await server.CreateClient().GetStringAsync("/readyz"));
        File.Delete(Assert.Single(System.IO.Directory.GetFiles(Path.GetDirectoryName(server.DatabaseFile)!, "latchkey.db.before-restore-*")));
    }

    private static async Task ExecuteAsync(string file, string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={file};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>The refused restore left the database, and no copy of it, behind.</summary>
    private async Task AssertNothingChangedAsync()
    {
        var folder = Path.GetDirectoryName(server.DatabaseFile)!;
        Assert.Empty(System.IO.Directory.GetFiles(folder, "*.before-restore-*"));
        Assert.Empty(System.IO.Directory.GetFiles(folder, "*.tmp"));
        Assert.Equal("Healthy", await server.CreateClient().GetStringAsync("/readyz"));
        Assert.True(await server.WithDbAsync(db => db.Users.AnyAsync()));
    }

    private Task<string> LatestMigrationAsync() =>
        server.WithDbAsync(db => Task.FromResult(db.Database.GetMigrations().Last()));
}

public sealed class BackupRestoreTestsOnPostgres(PostgresServer server) : BackupRestoreTests(server), IClassFixture<PostgresServer>
{
    private NpgsqlConnectionStringBuilder Database => new(server.ConnectionString);

    /// <summary>The documented command: <c>pg_dump --format=custom</c>, while the server runs.</summary>
    protected override async Task BackUpAsync(string file) =>
        await RunPostgresToolAsync("pg_dump", ["--format=custom", $"--file={file}", .. ConnectionArguments()]);

    /// <summary>Drop the database, create it empty, then the documented <c>pg_restore</c>.</summary>
    protected override async Task DestroyAndRestoreAsync(string file)
    {
        await using (var admin = new NpgsqlConnection(PostgresServer.AdminConnectionString))
        {
            await admin.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE \"{Database.Database}\" WITH (FORCE)", admin);
            await drop.ExecuteNonQueryAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{Database.Database}\"", admin);
            await create.ExecuteNonQueryAsync();
        }
        await RunPostgresToolAsync("pg_restore", ["--exit-on-error", "--single-transaction", .. ConnectionArguments(), file]);
    }

    [Fact]
    public async Task Backup_on_postgres_points_to_pg_dump()
    {
        var run = await server.RunCliAsync(["backup", Path.Combine(Directory, "never.db")]);

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("works on SQLite only", run.Error);
        Assert.Contains("pg_dump --format=custom", run.Error);
        Assert.Contains("docs/operations.md", run.Error);
        Assert.DoesNotContain("Password", run.Error, StringComparison.OrdinalIgnoreCase);
        Assert.False(File.Exists(Path.Combine(Directory, "never.db")));
    }

    [Fact]
    public async Task Restore_on_postgres_points_to_pg_restore()
    {
        var file = Path.Combine(Directory, "some.db");
        await File.WriteAllTextAsync(file, "anything");

        var run = await server.RunCliAsync(["restore", file]);

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("works on SQLite only", run.Error);
        Assert.Contains("pg_restore", run.Error);
    }

    private string[] ConnectionArguments() =>
        [$"--host={Database.Host}", $"--port={Database.Port}", $"--username={Database.Username}", $"--dbname={Database.Database}"];

    private async Task RunPostgresToolAsync(string tool, string[] arguments)
    {
        var bin = System.IO.Directory.GetDirectories("/usr/lib/postgresql")
            .OrderBy(d => int.TryParse(Path.GetFileName(d), out var version) ? version : 0)
            .Select(d => Path.Combine(d, "bin", tool))
            .Last(File.Exists);
        var start = new ProcessStartInfo(bin) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        if (!string.IsNullOrEmpty(Database.Password))
        {
            start.Environment["PGPASSWORD"] = Database.Password;
        }
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"{tool} exited with {process.ExitCode}: {await error} {await output}");
    }
}

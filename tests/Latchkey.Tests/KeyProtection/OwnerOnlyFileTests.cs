using Latchkey.Cli;
using Latchkey.Features.KeyProtection;
using Latchkey.Storage;
using Latchkey.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Latchkey.Tests.KeyProtection;

/// <summary>
/// The files that hold secrets are the owner's only: the SQLite database with its journal files
/// and its folder, and the master key file, whether Latchkey makes them or an earlier release
/// left them open; and in production the server says when the master key sits where a copy of
/// the database would take it along.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class OwnerOnlyFileTests(SqliteServer server) : IClassFixture<SqliteServer>, IDisposable
{
    private const UnixFileMode OwnerFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerFolder = OwnerFile | UnixFileMode.UserExecute;
    private const UnixFileMode Open = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    private readonly string _folder = Path.Combine(Path.GetTempPath(), "latchkey-tests", "modes-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    [Fact]
    public async Task The_running_servers_database_its_journal_files_its_folder_and_its_key_file_are_the_owners_only()
    {
        await TestAccounts.SignUpAsync(server);

        Assert.Equal(OwnerFolder, File.GetUnixFileMode(Path.GetDirectoryName(server.DatabaseFile)!));
        foreach (var file in new[] { server.DatabaseFile, server.DatabaseFile + "-wal", server.DatabaseFile + "-shm", server.VaultKeyFile })
        {
            Assert.True(File.Exists(file), file);
            Assert.Equal(OwnerFile, File.GetUnixFileMode(file));
        }
    }

    [Fact]
    public void A_new_database_is_created_owner_only_before_sqlite_opens_it()
    {
        var database = Path.Combine(_folder, "data", "latchkey.db");

        Permissions(database).Apply();

        Assert.Equal(OwnerFolder, File.GetUnixFileMode(Path.GetDirectoryName(database)!));
        Assert.Equal(OwnerFile, File.GetUnixFileMode(database));
        Assert.Equal(0, new FileInfo(database).Length);
    }

    [Fact]
    public void Files_an_earlier_release_left_open_are_closed_at_start()
    {
        var folder = Path.Combine(_folder, "data");
        Directory.CreateDirectory(folder);
        File.SetUnixFileMode(folder, Open | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        var database = Path.Combine(folder, "latchkey.db");
        foreach (var file in new[] { database, database + "-wal", database + "-shm", Path.Combine(folder, "vault-master-keys.json") })
        {
            File.WriteAllText(file, "");
            File.SetUnixFileMode(file, Open);
        }

        Permissions(database).Apply();

        Assert.Equal(OwnerFolder, File.GetUnixFileMode(folder));
        foreach (var file in new[] { database, database + "-wal", database + "-shm" })
        {
            Assert.Equal(OwnerFile, File.GetUnixFileMode(file));
        }
    }

    [Fact]
    public void A_folder_that_holds_more_than_the_database_is_left_as_the_operator_made_it()
    {
        var shared = Path.Combine(_folder, "shared");
        Directory.CreateDirectory(shared);
        var folderMode = File.GetUnixFileMode(shared) | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        File.SetUnixFileMode(shared, folderMode);
        File.WriteAllText(Path.Combine(shared, "notes.txt"), "someone else's");
        var database = Path.Combine(shared, "latchkey.db");

        Permissions(database).Apply();

        Assert.Equal(folderMode, File.GetUnixFileMode(shared));
        Assert.Equal(OwnerFile, File.GetUnixFileMode(database));
    }

    [Fact]
    public void A_generated_key_file_is_the_owners_only_and_an_open_one_is_closed_when_read()
    {
        var keyFile = Path.Combine(_folder, "keys", "vault-master-keys.json");
        var keys = new MasterKeys(new MasterKeyFile(keyFile, mayGenerate: true, NullLogger<MasterKeyFile>.Instance));
        Assert.Equal(OwnerFolder, File.GetUnixFileMode(Path.GetDirectoryName(keyFile)!));
        Assert.Equal(OwnerFile, File.GetUnixFileMode(keyFile));

        File.SetUnixFileMode(keyFile, Open);
        var reread = new MasterKeys(new MasterKeyFile(keyFile, mayGenerate: false, NullLogger<MasterKeyFile>.Instance));

        Assert.Equal(OwnerFile, File.GetUnixFileMode(keyFile));
        Assert.Equal(keys.Get(keys.ActiveId), reread.Get(keys.ActiveId));
    }

    [Fact]
    public void Master_keys_made_in_the_same_second_get_different_ids_and_none_is_replaced()
    {
        // Ids were the time to the second: a rotation in the second the key file was made
        // replaced the key under the same id, and the data keys it had wrapped no longer opened.
        var file = Path.Combine(_folder, "vault.json");
        var keys = new MasterKeys(new MasterKeyFile(file, mayGenerate: true, NullLogger<MasterKeyFile>.Instance));
        var first = keys.ActiveId;
        var firstKey = keys.Get(first).ToArray();
        var second = keys.AddKey();
        var third = keys.AddKey();

        Assert.Equal(3, new[] { first, second, third }.Distinct().Count());
        Assert.Equal(firstKey, keys.Get(first));
        var reloaded = new MasterKeys(new MasterKeyFile(file, mayGenerate: false, NullLogger<MasterKeyFile>.Instance));
        Assert.Equal(firstKey, reloaded.Get(first));
        Assert.Equal(third, reloaded.ActiveId);
    }

    [Fact]
    public void A_key_this_process_has_not_seen_is_read_again_from_the_provider()
    {
        // Another process (the CLI's rotate-key, another node) added a key after this one started.
        var file = Path.Combine(_folder, "vault.json");
        var running = new MasterKeys(new MasterKeyFile(file, mayGenerate: true, NullLogger<MasterKeyFile>.Instance));
        var rotated = new MasterKeys(new MasterKeyFile(file, mayGenerate: false, NullLogger<MasterKeyFile>.Instance)).AddKey();

        Assert.True(running.Has(rotated));
    }

    [Fact]
    public async Task In_production_serve_warns_when_the_master_key_file_is_in_the_database_folder()
    {
        var besideDatabase = Path.Combine(Path.GetDirectoryName(server.DatabaseFile)!, "vault-master-keys.json");
        File.Copy(server.VaultKeyFile, besideDatabase, overwrite: true);

        var banner = await ServeBannerAsync(("Vault:KeyFile", besideDatabase));

        Assert.Contains($"Master keys  : the key file {besideDatabase}", banner);
        Assert.Contains("in the database's folder", banner);
        Assert.Contains("Vault:KeyFile", banner);
        Assert.Contains("Vault:RequireMasterKey=true", banner);
    }

    [Fact]
    public async Task Serve_says_nothing_more_when_the_operator_put_the_key_file_elsewhere()
    {
        var banner = await ServeBannerAsync();

        Assert.Contains($"Master keys  : the key file {server.VaultKeyFile}", banner);
        Assert.DoesNotContain("Warning: the master key", banner);
        // The first-user command is the one that works from here (CliInvocationTests has the cases).
        Assert.Contains("or run: " + CliInvocation.Of("users create --email you@example.com"), banner);
    }

    private static SqliteFilePermissions Permissions(string database) =>
        new(Options.Create(new StorageOptions { ConnectionString = $"Data Source={database}" }), NullLogger<SqliteFilePermissions>.Instance);

    /// <summary>Runs <c>latchkey serve</c> on the fixture's database until it prints its banner, then stops it.</summary>
    private async Task<string> ServeBannerAsync(params (string Key, string Value)[] settings)
    {
        var output = new StringWriter();
        var synchronized = TextWriter.Synchronized(output);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var serve = LatchkeyCommandLine.InvokeAsync(["serve"], builder =>
        {
            server.Configure(builder);
            builder.Configuration.AddInMemoryCollection(settings.Select(s => KeyValuePair.Create(s.Key, (string?)s.Value)));
        }, synchronized, synchronized, new StringReader(""), stop.Token);
        await Eventually.TrueAsync(() => Task.FromResult(output.ToString().Contains("Press Ctrl+C to stop.", StringComparison.Ordinal) || serve.IsCompleted),
            TimeSpan.FromSeconds(30), "serve prints its banner");
        stop.Cancel();
        Assert.Equal(0, await serve);
        return output.ToString();
    }
}

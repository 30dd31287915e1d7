using System.CommandLine;
using System.Globalization;
using Latchkey.Features.KeyProtection;
using Latchkey.Storage;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Latchkey.Cli;

/// <summary>
/// <c>latchkey backup</c> and <c>latchkey restore</c>: the SQLite database file with SQLite's online
/// backup API. PostgreSQL has its own tools (pg_dump, pg_restore); the commands say so.
/// </summary>
public static class BackupCommands
{
    private const string Docs = "see \"Backups\" in docs/operations.md";

    public static IEnumerable<Command> Create(CliContext context)
    {
        yield return Backup(context);
        yield return Restore(context);
    }

    private static Command Backup(CliContext context)
    {
        var file = new Argument<FileInfo?>("file") { Description = "The backup file to write.", Arity = ArgumentArity.ZeroOrOne };
        var outputOption = new Option<FileInfo?>("--output", "-o") { Description = "The backup file to write (instead of the argument)." };
        var force = new Option<bool>("--force") { Description = "Replace the backup file if it exists." };
        var backup = new Command("backup",
            "Write a consistent copy of the SQLite database while the server runs (SQLite's online backup API), readable by its owner only. " +
            "On PostgreSQL, use pg_dump (" + Docs + ").") { file, outputOption, force };
        backup.SetAction((parse, cancellationToken) => RunOnSqliteAsync(context, parse, "backup", async (sqlite, services, output, _) =>
        {
            var target = (parse.GetValue(file), parse.GetValue(outputOption)) switch
            {
                ({ } a, { } b) when a.FullName != b.FullName => null,
                ({ } a, _) => a,
                (_, var b) => b,
            };
            if (target is null)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync("Name one backup file: 'latchkey backup FILE' or 'latchkey backup --output FILE'.");
                return CliContext.ConfigurationError;
            }

            var time = services.GetRequiredService<TimeProvider>();
            await output.WriteLineAsync($"Backing up {sqlite.DatabasePath} to {target.FullName} (SQLite online backup; the server may keep running)...");
            var started = time.GetTimestamp();
            var summary = sqlite.Backup(target.FullName, parse.GetValue(force));
            var seconds = time.GetElapsedTime(started).TotalSeconds;
            await output.WriteLineAsync($"Wrote {summary.Path}: {Size(summary.Bytes)}, mode 0600, integrity ok, in {seconds.ToString("0.00", CultureInfo.InvariantCulture)} s.");
            await WriteSummaryAsync(output, summary);
            await output.WriteLineAsync($"Not in this backup: the master key ({VaultKeyLocation(services)}). Back it up separately, and keep it apart " +
                                        "from the backup: without it neither the stored credentials nor the Data Protection keys (sessions, signing keys) can be decrypted.");
            await output.WriteLineAsync("The backup holds password hashes and the account data: keep it as safe as the database.");
            return CliContext.Success;
        }, cancellationToken));
        return backup;
    }

    private static Command Restore(CliContext context)
    {
        var file = new Argument<FileInfo>("file") { Description = "A backup written by 'latchkey backup' (or sqlite3's .backup)." };
        var restore = new Command("restore",
            "Replace the SQLite database with a backup after checking it, keeping the replaced database beside it, then migrate it. " +
            "Stop the server first. On PostgreSQL, use pg_restore (" + Docs + ").") { file };
        restore.SetAction((parse, cancellationToken) => RunOnSqliteAsync(context, parse, "restore", async (sqlite, services, output, ct) =>
        {
            var source = parse.GetValue(file)!.FullName;
            await output.WriteLineAsync($"Restoring {source} into {sqlite.DatabasePath}...");
            using (var staged = sqlite.Stage(source))
            {
                await output.WriteLineAsync($"Checked {source}: {Size(staged.Backup.Bytes)}, integrity ok, a Latchkey database.");
                await WriteSummaryAsync(output, staged.Backup);
                var (kept, raw) = sqlite.Replace(staged);
                if (kept is not null)
                {
                    await output.WriteLineAsync(raw
                        ? $"Kept the replaced database (SQLite could not read it) as its raw files: {kept}"
                        : $"Kept the replaced database as {kept} (delete it once the restore is confirmed).");
                }
            }
            await output.WriteLineAsync($"Restored {sqlite.DatabasePath}.");

            var applied = await services.GetRequiredService<DatabaseMigrator>().MigrateAsync(ct);
            await output.WriteLineAsync(applied.Count == 0
                ? "Schema: up to date for this build."
                : $"Schema: applied {applied.Count} migration(s) the backup predates: {string.Join(", ", applied)}.");

            await output.WriteLineAsync(VaultKeyReminder(services));
            await output.WriteLineAsync("Start the server again.");
            return CliContext.Success;
        }, cancellationToken));
        return restore;
    }

    private static async Task WriteSummaryAsync(TextWriter output, SqliteFileSummary summary)
    {
        await output.WriteLineAsync($"Schema: {summary.MigrationLevel ?? "(no migrations)"} ({summary.Migrations.Count} migrations)");
        await output.WriteLineAsync("Rows:");
        foreach (var (label, rows) in summary.Rows)
        {
            await output.WriteLineAsync($"  {label,-22}{rows,10}");
        }
    }

    /// <summary>
    /// Runs a command on the SQLite database, without migrating it first. On PostgreSQL it points to
    /// pg_dump and pg_restore instead; refusals and file-system failures become a message and exit code 1.
    /// </summary>
    private static Task<int> RunOnSqliteAsync(CliContext context, ParseResult parse, string name,
        Func<SqliteBackup, IServiceProvider, TextWriter, CancellationToken, Task<int>> command, CancellationToken cancellationToken) =>
        context.RunAsync(parse, async (services, output, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var storage = services.GetRequiredService<IOptions<StorageOptions>>().Value;
            if (storage.IsPostgres)
            {
                await error.WriteLineAsync(PostgresAdvice(storage, name));
                return CliContext.ConfigurationError;
            }
            try
            {
                var sqlite = new SqliteBackup(services.GetRequiredService<LatchkeyDbContext>(), services.GetRequiredService<TimeProvider>(), services.GetServices<SummarizedTable>());
                return await command(sqlite, services, output, ct);
            }
            catch (Exception exception) when (exception is SqliteBackupException or IOException or UnauthorizedAccessException)
            {
                await error.WriteLineAsync(exception.Message);
                return CliContext.Failure;
            }
        }, cancellationToken, migrate: false);

    private static string PostgresAdvice(StorageOptions storage, string command)
    {
        // Names the database without its password.
        var connection = new NpgsqlConnectionStringBuilder(storage.ConnectionString);
        var target = $"--host={connection.Host} --port={connection.Port} --username={connection.Username} --dbname={connection.Database}";
        return $"latchkey {command} works on SQLite only; this server stores its data in PostgreSQL. Use PostgreSQL's own tools ({Docs}):" + Environment.NewLine +
               $"  back up:  pg_dump --format=custom --file=latchkey.dump {target}" + Environment.NewLine +
               $"  restore:  stop the servers, recreate the database empty, then pg_restore --exit-on-error --single-transaction {target} latchkey.dump" + Environment.NewLine +
               "The vault master key is not in the database: back it up separately.";
    }

    private static string VaultKeyLocation(IServiceProvider services) => services.GetRequiredService<IMasterKeyProvider>().Source;

    private static string VaultKeyReminder(IServiceProvider services)
    {
        if (services.GetRequiredService<IMasterKeyProvider>() is MasterKeyFile { FilePath: var keyFile } && !File.Exists(keyFile))
        {
            return $"Warning: the vault key file {keyFile} does not exist. Put back the one from when the backup was made " +
                   "before starting the server: a new key cannot decrypt the stored credentials or the Data Protection keys.";
        }
        return $"The master key is not in the database: the server must use the one from when the backup was made ({VaultKeyLocation(services)}), " +
               "or stored credentials, sessions and signing keys cannot be decrypted.";
    }

    private static string Size(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} bytes",
        < 1024 * 1024 => (bytes / 1024.0).ToString("0.0 'KiB'", CultureInfo.InvariantCulture),
        _ => (bytes / (1024.0 * 1024)).ToString("0.0 'MiB'", CultureInfo.InvariantCulture),
    };
}

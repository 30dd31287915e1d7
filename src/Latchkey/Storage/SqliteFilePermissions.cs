using Latchkey.Common;
using Microsoft.Extensions.Options;

namespace Latchkey.Storage;

/// <summary>
/// The SQLite database holds password hashes, key hashes and every account's data: its files are
/// the owner's only (0600) and so is its folder (0700). The database file is created empty before
/// SQLite opens it, because SQLite gives the files it adds beside it (<c>-wal</c>, <c>-shm</c>,
/// <c>-journal</c>) the database file's mode. Run when the schema is migrated and when a server starts.
/// </summary>
public sealed partial class SqliteFilePermissions(IOptions<StorageOptions> options, ILogger<SqliteFilePermissions> logger) : IHostedService
{
    private static readonly string[] Suffixes = ["", "-wal", "-shm", "-journal"];

    public Task StartAsync(CancellationToken cancellationToken)
    {
        Apply();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Apply()
    {
        if (StorageOptions.SqliteFileOf(options.Value.EffectiveConnectionString) is not { } database)
        {
            return;
        }
        var folder = Path.GetDirectoryName(database)!;
        var created = OwnerOnlyFiles.CreateDirectory(folder);
        try
        {
            OwnerOnlyFiles.CreateFile(database);
        }
        catch (IOException) when (File.Exists(database))
        {
            // It exists already (or another process made it a moment ago).
        }
        foreach (var suffix in Suffixes)
        {
            if (OwnerOnlyFiles.Restrict(database + suffix))
            {
                LogRestricted(logger, database + suffix);
            }
        }
        if (created || !OwnerOnlyFiles.IsOpenToOthers(folder))
        {
            return;
        }
        // A folder Latchkey did not make is changed only when it is the database's own (the default
        // ./data); a shared one (a home folder, /var/lib) is the operator's to decide.
        if (HoldsOnlyLatchkeyFiles(folder, database) && OwnerOnlyFiles.Restrict(folder))
        {
            LogRestricted(logger, folder);
        }
        else
        {
            LogFolderOpen(logger, folder);
        }
    }

    private static bool HoldsOnlyLatchkeyFiles(string folder, string database)
    {
        var name = Path.GetFileName(database);
        return Directory.EnumerateFileSystemEntries(folder).Select(Path.GetFileName).All(entry =>
            entry is not null && (entry.StartsWith(name, StringComparison.Ordinal) ||
                                  // The vault key file earlier releases generated here.
                                  entry.StartsWith("vault-master-keys.json", StringComparison.Ordinal)));
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Made {Path} accessible to its owner only")]
    private static partial void LogRestricted(ILogger logger, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The database folder {Folder} is open to other accounts and holds more than Latchkey's files, so it was left as it is: chmod 700 it, or keep the database in a folder of its own")]
    private static partial void LogFolderOpen(ILogger logger, string folder);
}

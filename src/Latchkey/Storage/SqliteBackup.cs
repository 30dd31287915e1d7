using Latchkey.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Storage;

/// <summary>A database file as a backup or restore found it: size, schema level, rows of the main tables.</summary>
public sealed record SqliteFileSummary(string Path, long Bytes, IReadOnlyList<string> Migrations, IReadOnlyList<(string Label, long Rows)> Rows)
{
    public string? MigrationLevel => Migrations.Count == 0 ? null : Migrations[^1];
}

/// <summary>A backup or restore refused or failed for a reason the operator can act on.</summary>
public sealed class SqliteBackupException(string message) : Exception(message);

/// <summary>
/// Backups and restores of the configured SQLite database. Backups use SQLite's online backup
/// API: one read transaction copies every page, so the copy is consistent while the server keeps
/// writing (WAL readers never block writers). Every file written here is readable by its owner
/// only, because it holds password hashes, key hashes and the Data Protection key ring.
/// </summary>
public sealed class SqliteBackup
{
    // SQLite result codes: another connection holds a lock; the file is damaged; it is not a database.
    private const int Busy = 5, Locked = 6, Corrupt = 11, NotADatabase = 26;

    private readonly LatchkeyDbContext _db;
    private readonly TimeProvider _time;
    private readonly IReadOnlyList<SummarizedTable> _summarized;

    public SqliteBackup(LatchkeyDbContext db, TimeProvider time, IEnumerable<SummarizedTable> summarized)
    {
        _db = db;
        _time = time;
        _summarized = [.. summarized];
        DatabasePath = StorageOptions.SqliteFileOf(db.Database.GetConnectionString())
            ?? throw new SqliteBackupException("The configured SQLite database is in memory: there is no file to back up or restore.");
    }

    /// <summary>The configured database file.</summary>
    public string DatabasePath { get; }

    /// <summary>Copies the live database to <paramref name="target"/> (a temporary file beside it, renamed into place).</summary>
    public SqliteFileSummary Backup(string target, bool overwrite)
    {
        target = Path.GetFullPath(target);
        if (Directory.Exists(target))
        {
            throw new SqliteBackupException($"{target} is a directory; name the backup file, for example {Path.Combine(target, "latchkey.db")}.");
        }
        if (SamePath(target, DatabasePath))
        {
            throw new SqliteBackupException($"{target} is the database itself; write the backup to another file.");
        }
        if (!File.Exists(DatabasePath))
        {
            throw new SqliteBackupException($"There is no database at {DatabasePath} to back up.");
        }
        var directory = Path.GetDirectoryName(target)!;
        if (!Directory.Exists(directory))
        {
            throw new SqliteBackupException($"The directory {directory} does not exist.");
        }
        if (File.Exists(target) && !overwrite)
        {
            throw new SqliteBackupException($"{target} already exists; pass --force to replace it.");
        }

        var temporary = TemporaryBeside(target);
        try
        {
            OwnerOnlyFiles.CreateFile(temporary);
            using (var source = Open(DatabasePath))
            using (var copy = Open(temporary))
            {
                source.BackupDatabase(copy);
                // A backup is one self-contained file: rollback journal instead of the live database's WAL.
                Execute(copy, "PRAGMA journal_mode=DELETE;");
            }
            var summary = Inspect(temporary, target);
            try
            {
                File.Move(temporary, target, overwrite);
            }
            catch (IOException) when (!overwrite && File.Exists(target))
            {
                throw new SqliteBackupException($"{target} already exists; pass --force to replace it.");
            }
            return summary;
        }
        catch (SqliteException exception)
        {
            throw new SqliteBackupException($"Cannot back up {DatabasePath}: {exception.Message}");
        }
        finally
        {
            DeleteWithJournals(temporary);
        }
    }

    /// <summary>
    /// Copies <paramref name="backup"/> to a private file beside the database and checks the copy
    /// (integrity, a Latchkey schema this build knows): what was checked is what
    /// <see cref="Replace"/> then renames into place, atomically.
    /// </summary>
    public StagedRestore Stage(string backup)
    {
        backup = Path.GetFullPath(backup);
        if (!File.Exists(backup))
        {
            throw new SqliteBackupException($"There is no file {backup}.");
        }
        if (SamePath(backup, DatabasePath))
        {
            throw new SqliteBackupException($"{backup} is the configured database itself; restore from a backup file.");
        }
        Directory.CreateDirectory(Path.GetDirectoryName(DatabasePath)!);

        var staging = TemporaryBeside(DatabasePath);
        try
        {
            OwnerOnlyFiles.CreateFile(staging);
            using (var from = File.OpenRead(backup))
            using (var to = new FileStream(staging, FileMode.Truncate, FileAccess.Write))
            {
                from.CopyTo(to);
                to.Flush(flushToDisk: true);
            }
            var summary = Inspect(staging, backup);
            var known = _db.Database.GetMigrations().ToHashSet(StringComparer.Ordinal);
            var unknown = summary.Migrations.Where(m => !known.Contains(m)).ToList();
            if (unknown.Count > 0)
            {
                throw new SqliteBackupException(
                    $"{backup} was made by a newer Latchkey: its schema has migrations this build does not know ({string.Join(", ", unknown)}). " +
                    "Restore it with that version or a later one.");
            }
            return new StagedRestore(staging, summary);
        }
        catch
        {
            DeleteWithJournals(staging);
            throw;
        }
    }

    /// <summary>
    /// Puts a staged backup in place of the configured database, keeping the database it replaces
    /// beside it. Refuses while another connection has the database open. The caller migrates the
    /// schema afterwards.
    /// </summary>
    public (string? KeptPrevious, bool KeptAsRawFiles) Replace(StagedRestore staged)
    {
        string? kept = null;
        var raw = false;
        if (File.Exists(DatabasePath))
        {
            (kept, raw) = SetAsideCurrentDatabase();
        }
        // A WAL or journal left beside the database belongs to the old file; SQLite would apply it to the new one.
        DeleteJournals(DatabasePath);
        File.Move(staged.Path, DatabasePath, overwrite: true);
        return (kept, raw);
    }

    /// <summary>A checked copy of a backup beside the database, deleted on dispose unless it was put in place.</summary>
    public sealed class StagedRestore(string path, SqliteFileSummary backup) : IDisposable
    {
        public string Path { get; } = path;

        public SqliteFileSummary Backup { get; } = backup;

        public void Dispose() => DeleteWithJournals(Path);
    }

    /// <summary>
    /// Copies the current database to <c>&lt;database&gt;.before-restore-&lt;time&gt;</c> while holding
    /// SQLite's exclusive lock on it, which fails while any other connection (a server) has it open.
    /// A database SQLite cannot read is kept as its raw files instead.
    /// </summary>
    private (string Kept, bool Raw) SetAsideCurrentDatabase()
    {
        var stamp = _time.GetUtcNow().ToString("yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        var kept = $"{DatabasePath}.before-restore-{stamp}";
        for (var n = 2; File.Exists(kept); n++)
        {
            kept = $"{DatabasePath}.before-restore-{stamp}-{n}";
        }
        using var current = Open(DatabasePath);
        try
        {
            // In exclusive locking mode the lock taken here is held until the connection closes.
            Execute(current, "PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;");
            OwnerOnlyFiles.CreateFile(kept);
            using var copy = Open(kept);
            current.BackupDatabase(copy);
            Execute(copy, "PRAGMA journal_mode=DELETE;");
            return (kept, false);
        }
        catch (SqliteException exception) when (exception.SqliteErrorCode is Busy or Locked)
        {
            DeleteWithJournals(kept);
            throw new SqliteBackupException(
                $"The database {DatabasePath} is in use, most likely by a running Latchkey server. " +
                "Stop every server and command using it, then run restore again. Nothing was changed.");
        }
        catch (SqliteException exception) when (exception.SqliteErrorCode is Corrupt or NotADatabase)
        {
            DeleteWithJournals(kept);
            CopyOwnerOnly(DatabasePath, kept);
            if (File.Exists(DatabasePath + "-wal"))
            {
                CopyOwnerOnly(DatabasePath + "-wal", kept + "-wal");
            }
            return (kept, true);
        }
    }

    /// <summary>Checks integrity and that the file is a Latchkey database; reads its schema level and row counts.</summary>
    private SqliteFileSummary Inspect(string path, string shownAs)
    {
        try
        {
            using var connection = Open(path);
            var problems = Query(connection, "PRAGMA integrity_check;", r => r.GetString(0));
            if (problems is not ["ok"])
            {
                throw new SqliteBackupException($"{shownAs} failed SQLite's integrity check: {string.Join("; ", problems.Take(5))}");
            }
            var tables = Query(connection, "SELECT name FROM sqlite_master WHERE type = 'table';", r => r.GetString(0)).ToHashSet(StringComparer.Ordinal);
            if (!tables.Contains("__EFMigrationsHistory"))
            {
                throw new SqliteBackupException($"{shownAs} is a SQLite database but not a Latchkey database: it has no __EFMigrationsHistory table.");
            }
            var migrations = Query(connection, "SELECT MigrationId FROM __EFMigrationsHistory ORDER BY MigrationId;", r => r.GetString(0));
            var rows = new List<(string, long)>();
            foreach (var (label, table) in MainTables())
            {
                if (tables.Contains(table))
                {
                    rows.Add((label, Query(connection, $"SELECT count(*) FROM \"{table}\";", r => r.GetInt64(0))[0]));
                }
            }
            return new SqliteFileSummary(shownAs, new FileInfo(path).Length, migrations, rows);
        }
        catch (SqliteException exception) when (exception.SqliteErrorCode is Corrupt or NotADatabase)
        {
            throw new SqliteBackupException($"{shownAs} is not a SQLite database, or is damaged ({exception.Message.TrimEnd('.')}).");
        }
    }

    /// <summary>The tables an operator checks after a backup or restore (features declare them), by the names the model gives them.</summary>
    private IEnumerable<(string Label, string Table)> MainTables()
    {
        foreach (var (label, type) in _summarized)
        {
            if (_db.Model.FindEntityType(type)?.GetTableName() is { } table)
            {
                yield return (label, table);
            }
        }
    }

    private static SqliteConnection Open(string path)
    {
        // Unpooled, so that closing really closes the file; a short wait, so that a lock held by
        // another process is reported at once instead of after Microsoft.Data.Sqlite's 30 s.
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWrite,
            Pooling = false,
            DefaultTimeout = 2,
        }.ConnectionString);
        connection.Open();
        return connection;
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static List<T> Query<T>(SqliteConnection connection, string sql, Func<SqliteDataReader, T> read)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var values = new List<T>();
        while (reader.Read())
        {
            values.Add(read(reader));
        }
        return values;
    }

    private static string TemporaryBeside(string path) =>
        Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");

    private static void CopyOwnerOnly(string from, string to)
    {
        File.Copy(from, to, overwrite: false);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(to, OwnerOnlyFiles.FileModeBits);
        }
    }

    private static void DeleteJournals(string path)
    {
        foreach (var suffix in (string[])["-wal", "-shm", "-journal"])
        {
            File.Delete(path + suffix);
        }
    }

    private static void DeleteWithJournals(string path)
    {
        File.Delete(path);
        DeleteJournals(path);
    }

    private static bool SamePath(string a, string b) =>
        string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal);
}

using Microsoft.Extensions.Options;

namespace Latchkey.Storage;

/// <summary>Which database Latchkey keeps its data in. Bound from the <c>Storage</c> section.</summary>
public sealed class StorageOptions
{
    public const string SectionName = "Storage";
    public const string ConnectionStringName = "Latchkey";

    /// <summary><c>sqlite</c> (embedded default) or <c>postgres</c>.</summary>
    public string Provider { get; set; } = StorageProvider.Sqlite;

    /// <summary>SQLite database file used when no connection string is configured; relative to the working directory.</summary>
    public string SqlitePath { get; set; } = "data/latchkey.db";

    /// <summary>
    /// SQLite's durability: <c>Normal</c> (default; with WAL, a power cut may lose the last
    /// commits but never corrupts the file) or <c>Full</c> (flush at every commit; slower writes).
    /// </summary>
    public SqliteSynchronousMode SqliteSynchronous { get; set; } = SqliteSynchronousMode.Normal;

    /// <summary>Apply pending migrations when the server starts (the CLI's <c>db migrate</c> does the same on demand).</summary>
    public bool MigrateOnStart { get; set; } = true;

    /// <summary>Resolved from <c>ConnectionStrings:Latchkey</c>; not bound from the section itself.</summary>
    public string? ConnectionString { get; set; }

    public bool IsPostgres => string.Equals(Provider, StorageProvider.Postgres, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The PostgreSQL connection string with two Npgsql defaults changed unless the string sets them:
    /// <list type="bullet">
    /// <item>automatic statement preparation on: the same few statements run on every request, and a
    /// prepared one skips PostgreSQL's parse and plan. Behind PgBouncer in transaction mode, set
    /// <c>Max Auto Prepare=0</c>.</item>
    /// <item><c>No Reset On Close=true</c>: Npgsql otherwise resets a pooled connection's session
    /// (three statements: session authorization, settings, advisory locks) each time it is taken from
    /// the pool, which on a refresh was three of every four statements. Latchkey's requests leave no
    /// session state behind (no session settings, no session locks); the cluster link, which holds a
    /// session lock, keeps the reset on its own pool.</item>
    /// </list>
    /// </summary>
    public string PostgresConnectionString
    {
        get
        {
            // Npgsql's builder answers ContainsKey for every keyword it knows; a plain builder holds only what was written.
            var written = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = ConnectionString };
            var builder = new Npgsql.NpgsqlConnectionStringBuilder(ConnectionString);
            if (!written.ContainsKey("Max Auto Prepare") && !written.ContainsKey("MaxAutoPrepare"))
            {
                builder.MaxAutoPrepare = 64;
                builder.AutoPrepareMinUsages = 2;
            }
            if (!written.ContainsKey("No Reset On Close") && !written.ContainsKey("NoResetOnClose"))
            {
                builder.NoResetOnClose = true;
            }
            return builder.ConnectionString;
        }
    }

    /// <summary>The connection string actually used: the configured one, or one built from <see cref="SqlitePath"/>.</summary>
    public string EffectiveConnectionString => !string.IsNullOrWhiteSpace(ConnectionString)
        ? ConnectionString
        : $"Data Source={Path.GetFullPath(SqlitePath)}";

    /// <summary>The full path of the database file a SQLite connection string names, or null for an in-memory database.</summary>
    public static string? SqliteFileOf(string? connectionString)
    {
        var dataSource = new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(connectionString).DataSource;
        return string.IsNullOrEmpty(dataSource) || dataSource == ":memory:" ? null : Path.GetFullPath(dataSource);
    }
}

public enum SqliteSynchronousMode
{
    Normal,
    Full,
}

public static class StorageProvider
{
    public const string Sqlite = "sqlite";
    public const string Postgres = "postgres";
}

internal sealed class StorageOptionsValidator : IValidateOptions<StorageOptions>
{
    public ValidateOptionsResult Validate(string? name, StorageOptions options)
    {
        var failures = new List<string>();
        var provider = options.Provider?.Trim().ToLowerInvariant();
        if (provider is not (StorageProvider.Sqlite or StorageProvider.Postgres))
        {
            failures.Add($"Storage:Provider must be '{StorageProvider.Sqlite}' or '{StorageProvider.Postgres}', not '{options.Provider}'.");
        }
        if (provider == StorageProvider.Postgres && string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            failures.Add("Storage:Provider is 'postgres' but ConnectionStrings:Latchkey is empty. " +
                         "Set it, for example LATCHKEY_ConnectionStrings__Latchkey='Host=localhost;Database=latchkey;Username=latchkey;Password=...'.");
        }
        if (provider == StorageProvider.Sqlite && string.IsNullOrWhiteSpace(options.ConnectionString) && string.IsNullOrWhiteSpace(options.SqlitePath))
        {
            failures.Add("Storage:SqlitePath must name a file when no ConnectionStrings:Latchkey is set.");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Options;

namespace Latchkey.Storage;

public static class StorageSetup
{
    /// <summary>Registers <see cref="LatchkeyDbContext"/> on the configured provider.</summary>
    public static WebApplicationBuilder AddStorage(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<IValidateOptions<StorageOptions>, StorageOptionsValidator>();
        builder.Services.AddOptions<StorageOptions>()
            .BindConfiguration(StorageOptions.SectionName)
            .Configure<IConfiguration>((options, configuration) =>
                options.ConnectionString = configuration.GetConnectionString(StorageOptions.ConnectionStringName))
            .ValidateOnStart();

        // The provider is chosen from configuration before the container is built, because EF Core
        // needs the context type at registration time.
        var storage = ConfiguredStorage(builder.Configuration);

        // Interceptors other parts register (the cluster's cache invalidation) go on every context.
        if (storage.IsPostgres)
        {
            builder.Services.AddDbContextPool<LatchkeyDbContext, PostgresLatchkeyDbContext>((services, options) =>
                options.UseNpgsql(storage.PostgresConnectionString)
                    .AddInterceptors(services.GetServices<IInterceptor>()));
        }
        else
        {
            builder.Services.AddHostedService<SqliteFilePermissions>();
            var pragmas = new SqliteConnectionPragmas(storage.SqliteSynchronous);
            builder.Services.AddSingleton<SqliteWriteGate>();
            builder.Services.AddDbContextPool<LatchkeyDbContext, SqliteLatchkeyDbContext>((services, options) =>
                options.UseSqlite(storage.EffectiveConnectionString)
                    .AddInterceptors([pragmas, services.GetRequiredService<SqliteWriteGate>(), .. services.GetServices<IInterceptor>()]));
        }

        builder.Services.AddScoped<DatabaseMigrator>();
        return builder;
    }

    /// <summary>The storage settings as configured, read before the container is built.</summary>
    public static StorageOptions ConfiguredStorage(IConfiguration configuration)
    {
        var storage = new StorageOptions();
        configuration.GetSection(StorageOptions.SectionName).Bind(storage);
        storage.ConnectionString = configuration.GetConnectionString(StorageOptions.ConnectionStringName);
        return storage;
    }
}

/// <summary>
/// Per-connection SQLite settings, applied once to each physical connection (pooled connections
/// keep them). In WAL mode <c>synchronous=NORMAL</c> never corrupts the database; a power cut may
/// lose the last commits. <c>FULL</c> flushes the log at every commit, several times slower to write.
/// </summary>
internal sealed class SqliteConnectionPragmas(SqliteSynchronousMode synchronous) : Microsoft.EntityFrameworkCore.Diagnostics.DbConnectionInterceptor
{
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<object, object> _configured = [];
    // busy_timeout: a writer that finds the database locked waits in SQLite itself (sleeps of a
    // millisecond upward) instead of Microsoft.Data.Sqlite's retry loop, which sleeps 150 ms a turn.
    private readonly string _statement = $"PRAGMA synchronous={synchronous.ToString().ToUpperInvariant()}; PRAGMA busy_timeout=30000;";

    public override void ConnectionOpened(System.Data.Common.DbConnection connection, Microsoft.EntityFrameworkCore.Diagnostics.ConnectionEndEventData eventData) =>
        Apply(connection);

    public override Task ConnectionOpenedAsync(System.Data.Common.DbConnection connection, Microsoft.EntityFrameworkCore.Diagnostics.ConnectionEndEventData eventData,
        CancellationToken cancellationToken = default)
    {
        Apply(connection);
        return Task.CompletedTask;
    }

    private void Apply(System.Data.Common.DbConnection connection)
    {
        // The native handle identifies the physical connection behind a pooled SqliteConnection.
        if (connection is not SqliteConnection { Handle: { } handle } sqlite || _configured.TryGetValue(handle, out _))
        {
            return;
        }
        using var command = sqlite.CreateCommand();
        command.CommandText = _statement;
        command.ExecuteNonQuery();
        _configured.AddOrUpdate(handle, handle);
    }
}

/// <summary>Brings the schema up to date; used on start and by <c>latchkey db migrate</c>.</summary>
/// <summary>
/// The newest migration of each database. <c>scripts/update-model.sh</c> writes them; a storage
/// test checks them against EF Core's own list, so they cannot drift.
/// </summary>
internal static class LatestMigrations
{
    public const string Sqlite = "20261206201300_AccountSecurity";
    public const string Postgres = "20261206201408_AccountSecurity";
}

public sealed partial class DatabaseMigrator(
    LatchkeyDbContext db, IOptions<StorageOptions> options, ILogger<DatabaseMigrator> logger, ILogger<SqliteFilePermissions> fileLogger)
{
    public async Task<IReadOnlyList<string>> MigrateAsync(CancellationToken cancellationToken = default)
    {
        var storage = options.Value;
        if (!storage.IsPostgres)
        {
            // The file and its folder exist, owner-only, before SQLite creates them with the umask's mode.
            new SqliteFilePermissions(Options.Create(new StorageOptions { ConnectionString = db.Database.GetConnectionString() }), fileLogger).Apply();
        }

        List<string> pending = [];
        if (!await IsUpToDateAsync(cancellationToken))
        {
            // On a fresh database EF's own existence check is a failing query that it logs as an
            // error; creating the (empty) history table first keeps a first start free of errors.
            await db.GetService<IHistoryRepository>().CreateIfNotExistsAsync(cancellationToken);
            pending = (await db.Database.GetPendingMigrationsAsync(cancellationToken)).ToList();
            await db.Database.MigrateAsync(cancellationToken);
        }

        if (!storage.IsPostgres)
        {
            // WAL lets readers proceed while a writer commits; the setting is stored in the file (a
            // restored backup comes back in rollback mode).
            await RunPlainAsync("PRAGMA journal_mode=WAL;", command => command.ExecuteNonQueryAsync(cancellationToken), cancellationToken);
        }

        LogMigrated(logger, storage.IsPostgres ? StorageProvider.Postgres : StorageProvider.Sqlite, pending.Count);
        return pending;
    }

    /// <summary>
    /// Whether every migration of this build is in the history table already, read with one plain
    /// query. EF Core's own way to tell (history model, existence script, pending list, and the
    /// model compared with the last snapshot in MigrateAsync) was a third of a CLI command's time
    /// on an up-to-date database. The tests check the snapshot comparison themselves.
    /// </summary>
    private async Task<bool> IsUpToDateAsync(CancellationToken cancellationToken)
    {
        var sql = db.GetService<ISqlGenerationHelper>();
        var applied = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            await RunPlainAsync($"SELECT {sql.DelimitIdentifier(nameof(HistoryRow.MigrationId))} FROM {sql.DelimitIdentifier(HistoryRepository.DefaultTableName)}",
                async command =>
                {
                    await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                    while (await reader.ReadAsync(cancellationToken))
                    {
                        applied.Add(reader.GetString(0));
                    }
                    return applied.Count;
                }, cancellationToken);
        }
        catch (DbException exception) when (!DatabaseUnavailable.Is(exception))
        {
            // No history table (or no database) yet: EF Core's own way, below, makes them.
            return false;
        }
        // EF Core applies migrations in order: the newest applied means all are. (Asking EF Core for
        // its list reads every type of the assembly, a tenth of a CLI command's time.)
        return applied.Contains(options.Value.IsPostgres ? LatestMigrations.Postgres : LatestMigrations.Sqlite);
    }

    /// <summary>
    /// Runs one statement on the context's connection as a plain command: on a start or a CLI
    /// command, EF Core's raw-SQL and query pipelines would cost their first use.
    /// </summary>
    private async Task RunPlainAsync(string statement, Func<DbCommand, Task<int>> run, CancellationToken cancellationToken)
    {
        await db.Database.OpenConnectionAsync(cancellationToken);
        try
        {
            await using var command = db.Database.GetDbConnection().CreateCommand();
            command.CommandText = statement;
            await run(command);
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Database on {Provider} is up to date ({Applied} migrations applied now)")]
    private static partial void LogMigrated(ILogger logger, string provider, int applied);
}

using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Latchkey.Bench;

/// <summary>
/// One Latchkey server built Release, on a fresh SQLite file or a fresh PostgreSQL database,
/// started as the README says (<c>latchkey serve</c>) on a loopback port. The CLI runs against
/// the same database for seeding and clean-up.
/// </summary>
internal sealed class LatchkeyTarget : IAsyncDisposable
{
    public const string TokensTable = "\"OpenIddictTokens\"";
    public const string SqliteName = "Latchkey (SQLite)";
    public const string PostgresName = "Latchkey (PostgreSQL)";

    private readonly BenchOptions _options;
    private readonly Dictionary<string, string?> _environment;
    private ChildProcess? _server;

    public string Name { get; }
    public bool IsPostgres { get; }
    public string BaseUrl { get; }

    /// <summary>The server's Prometheus scrape endpoint (a listener of its own).</summary>
    public string MetricsUrl { get; private init; } = "";
    public ChildProcess Server => _server ?? throw new InvalidOperationException("Not started.");
    private string ConnectionString { get; }

    private LatchkeyTarget(BenchOptions options, string name, bool isPostgres, string connectionString, Dictionary<string, string?> environment, int port)
    {
        _options = options;
        Name = name;
        IsPostgres = isPostgres;
        ConnectionString = connectionString;
        _environment = environment;
        BaseUrl = $"http://127.0.0.1:{port}";
    }

    private string Dll => Path.Combine(BuildDirectory(_options), "latchkey.dll");

    /// <summary>Where run.sh publishes the release build: latchkey.dll, and the native launcher <c>latchkey</c> beside it.</summary>
    public static string BuildDirectory(BenchOptions options) => Path.Combine(options.Root, "bench", "results", "build", "latchkey-release");

    /// <summary>The settings every benchmark server runs with, its data in <paramref name="workDirectory"/>.</summary>
    public static Dictionary<string, string?> ServerEnvironment(string workDirectory) => new()
    {
        ["LATCHKEY_Vault__KeyFile"] = Path.Combine(workDirectory, "vault-master-keys.json"),
        // The benchmark's broker provider is this same server, on loopback.
        ["LATCHKEY_Broker__AllowPrivateNetworks"] = "true",
        // The MCP upstream of the gateway workload is the ceiling process, on loopback.
        ["LATCHKEY_Mcp__AllowPrivateNetworks"] = "true",
        // One client from one address at thousands of requests a second is the point here, not abuse.
        ["LATCHKEY_RateLimits__Enabled"] = "false",
        ["DOTNET_ENVIRONMENT"] = "Production",
        ["ASPNETCORE_ENVIRONMENT"] = "Production",
    };

    /// <summary>The settings of a server on a SQLite file in <paramref name="workDirectory"/>.</summary>
    public static Dictionary<string, string?> SqliteEnvironment(string workDirectory)
    {
        var environment = ServerEnvironment(workDirectory);
        environment["LATCHKEY_Storage__Provider"] = "sqlite";
        environment["LATCHKEY_Storage__SqlitePath"] = SqliteFile(workDirectory);
        return environment;
    }

    private static string SqliteFile(string workDirectory) => Path.Combine(workDirectory, "latchkey.db");

    public static async Task<LatchkeyTarget> StartAsync(BenchOptions options, bool postgres, string workDirectory)
    {
        Directory.CreateDirectory(workDirectory);
        var environment = postgres ? ServerEnvironment(workDirectory) : SqliteEnvironment(workDirectory);
        string connectionString;
        if (postgres)
        {
            var database = "latchkey_bench_" + Guid.NewGuid().ToString("N")[..8];
            var admin = new NpgsqlConnectionStringBuilder(options.PostgresConnectionString);
            await using (var connection = new NpgsqlConnection(admin.ConnectionString))
            {
                await connection.OpenAsync();
                await using var create = new NpgsqlCommand($"CREATE DATABASE {database}", connection);
                await create.ExecuteNonQueryAsync();
            }
            connectionString = new NpgsqlConnectionStringBuilder(options.PostgresConnectionString) { Database = database }.ConnectionString;
            environment["LATCHKEY_Storage__Provider"] = "postgres";
            environment["LATCHKEY_ConnectionStrings__Latchkey"] = connectionString;
        }
        else
        {
            connectionString = new SqliteConnectionStringBuilder { DataSource = SqliteFile(workDirectory), DefaultTimeout = 60 }.ConnectionString;
        }

        // Metrics on, as an operator would run it: the meters' cost is part of what is measured, and
        // the run ends by scraping them (BenchRun.CheckMetricsAsync).
        var metricsPort = ChildProcess.FreePort();
        environment["LATCHKEY_Telemetry__Prometheus"] = "true";
        environment["LATCHKEY_Telemetry__PrometheusPort"] = metricsPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var port = ChildProcess.FreePort();
        var target = new LatchkeyTarget(options, postgres ? PostgresName : SqliteName, postgres, connectionString, environment, port)
        {
            MetricsUrl = $"http://127.0.0.1:{metricsPort}/metrics",
        };
        target._server = ChildProcess.Start(postgres ? "latchkey-postgres" : "latchkey-sqlite", "dotnet",
            [target.Dll, "serve", "--urls", target.BaseUrl], environment, Path.Combine(options.ResultsDirectory, "logs"), workDirectory);
        await target.Server.WaitUntilReadyAsync(target.BaseUrl + "/readyz", TimeSpan.FromSeconds(90));
        return target;
    }

    /// <summary>Runs <c>latchkey &lt;args&gt;</c> against this target's database.</summary>
    public async Task<string> CliAsync(string[] arguments, string? stdin = null)
    {
        var (exitCode, output, error) = await ChildProcess.RunAsync("dotnet", [Dll, .. arguments], _environment, stdin);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"latchkey {string.Join(' ', arguments)} failed ({exitCode}): {error}{output}");
        }
        return output;
    }

    private async Task<DbConnection> OpenAsync()
    {
        DbConnection connection = IsPostgres ? new NpgsqlConnection(ConnectionString) : new SqliteConnection(ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    public async Task<long> CountTokensAsync()
    {
        await using var connection = await OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT COUNT(*) FROM {TokensTable}";
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Adds <paramref name="count"/> access-token rows in one statement, shaped like the server's
    /// own (copied from a real row of the app): expired two days ago, so clean-up may remove them.
    /// Their ids and stored reference ids sort before every real one, as the server's
    /// time-ordered ones of older tokens would; no request presents their reference ids. Each call must use
    /// ids not used before: <paramref name="offset"/> is the number of rows added so far.
    /// </summary>
    public async Task AddExpiredTokensAsync(int count, int offset = 0)
    {
        if (count <= 0)
        {
            return;
        }
        await using var connection = await OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandTimeout = 600;
        var created = DateTime.UtcNow.AddDays(-3);
        var expired = DateTime.UtcNow.AddDays(-2);
        command.CommandText = IsPostgres
            ? $"""
              INSERT INTO {TokensTable} ("Id", "ApplicationId", "ConcurrencyToken", "CreationDate", "ExpirationDate", "ReferenceId", "Status", "Subject", "Type")
              SELECT '00' || lpad(to_hex(i + @offset), 10, '0') || '-0000-7000-8000-' || substr(md5((i + @offset)::text), 1, 12), t."ApplicationId", 'bench', @created, @expired, '00' || lpad(to_hex(i + @offset), 8, '0') || '.' || md5(random()::text || i::text), 'valid', t."Subject", t."Type"
              FROM generate_series(1, @count) AS i,
                   (SELECT "ApplicationId", "Subject", "Type" FROM {TokensTable} WHERE "ReferenceId" IS NOT NULL LIMIT 1) AS t
              """
            : $"""
              WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < @count)
              INSERT INTO {TokensTable} (Id, ApplicationId, ConcurrencyToken, CreationDate, ExpirationDate, ReferenceId, Status, Subject, Type)
              SELECT printf('00%010x', i + @offset) || '-0000-7000-8000-' || lower(hex(randomblob(6))), t.ApplicationId, 'bench', @created, @expired, printf('00%08x.', i + @offset) || lower(hex(randomblob(16))), 'valid', t.Subject, t.Type
              FROM n, (SELECT ApplicationId, Subject, Type FROM {TokensTable} WHERE ReferenceId IS NOT NULL LIMIT 1) AS t
              """;
        AddParameter(command, "count", count);
        AddParameter(command, "offset", offset);
        AddParameter(command, "created", IsPostgres ? created : created.ToString("yyyy-MM-dd HH:mm:ss.FFFFFFF", System.Globalization.CultureInfo.InvariantCulture));
        AddParameter(command, "expired", IsPostgres ? expired : expired.ToString("yyyy-MM-dd HH:mm:ss.FFFFFFF", System.Globalization.CultureInfo.InvariantCulture));
        await command.ExecuteNonQueryAsync();
        if (IsPostgres)
        {
            await using var analyze = connection.CreateCommand();
            analyze.CommandText = $"ANALYZE {TokensTable}";
            await analyze.ExecuteNonQueryAsync();
        }
    }

    private static void AddParameter(DbCommand command, string name, object value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value;
        command.Parameters.Add(parameter);
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}

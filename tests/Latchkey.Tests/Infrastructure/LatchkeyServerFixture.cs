using System.Net;
using Latchkey.Cli;
using Latchkey.Features.AuthorizationServer.Apps;
using Latchkey.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Latchkey.Tests.Infrastructure;

/// <summary>
/// A real Latchkey server on a loopback port with a database of its own, started once per test
/// class. Subclasses pick the storage provider, so each test class runs on SQLite and PostgreSQL.
/// </summary>
public abstract class LatchkeyServerFixture : IAsyncLifetime
{
    public const string InitialAccessToken = "test-initial-access-token-0123456789";

    private WebApplication? _app;
    private int _nodes;

    /// <summary>The vault's development key file of this server (the same for its CLI runs and extra nodes).</summary>
    public string VaultKeyFile { get; } = Path.Combine(Path.GetTempPath(), "latchkey-tests", $"vault-{Guid.NewGuid():N}.json");

    public abstract string Provider { get; }

    public Uri BaseAddress { get; private set; } = null!;

    public IServiceProvider Services => _app?.Services ?? throw new InvalidOperationException("The server has not started.");

    protected abstract Task<string> CreateDatabaseAsync();

    protected abstract Task DropDatabaseAsync();

    public string ConnectionString { get; private set; } = "";

    public virtual async Task InitializeAsync()
    {
        ConnectionString = await CreateDatabaseAsync();
        _app = Program.BuildWebApp([], Configure);
        await using (var scope = _app.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<DatabaseMigrator>().MigrateAsync();
        }
        await _app.StartAsync();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        BaseAddress = new Uri(address);
    }

    /// <summary>
    /// Starts one more node on the same database, as a second machine behind a load balancer would
    /// be. Like such nodes it names the first node's address as the issuer they share.
    /// </summary>
    public async Task<(WebApplication App, Uri BaseAddress)> StartAnotherNodeAsync(IReadOnlyDictionary<string, string?>? settings = null)
    {
        var node = Interlocked.Increment(ref _nodes);
        var app = Program.BuildWebApp([], builder =>
        {
            Configure(builder);
            builder.Configuration["AuthorizationServer:Issuer"] = BaseAddress.AbsoluteUri;
            if (Provider == StorageProvider.Postgres)
            {
                // A node of its own process has a connection pool of its own; in this one process
                // the same connection string would share one. The name also tells nodes apart in pg_stat_activity.
                builder.Configuration["ConnectionStrings:Latchkey"] =
                    new NpgsqlConnectionStringBuilder(ConnectionString) { ApplicationName = $"latchkey-node-{node}" }.ConnectionString;
            }
            if (settings is not null)
            {
                builder.Configuration.AddInMemoryCollection(settings);
            }
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return (app, new Uri(address));
    }

    /// <summary>
    /// Stops the server, runs <paramref name="whileStopped"/> (a restore, say) and starts the server
    /// again on the same database and address, as an operator restarting it would.
    /// </summary>
    public async Task RestartAsync(Func<Task> whileStopped)
    {
        await _app!.StopAsync();
        await _app.DisposeAsync();
        _app = null;
        // Pooled connections would outlive the stopped server and keep the old database open.
        ClearOwnPool();
        await whileStopped();
        _app = Program.BuildWebApp([], builder =>
        {
            Configure(builder);
            builder.WebHost.UseUrls(BaseAddress.AbsoluteUri.TrimEnd('/'));
        });
        await _app.StartAsync();
    }

    /// <summary>
    /// Closes this fixture's pooled connections, and only its own: clearing every pool of the
    /// process would close other running test servers' connections, which a restore test relies on.
    /// </summary>
    public void ClearOwnPool()
    {
        if (Provider == StorageProvider.Postgres)
        {
            // The server adds settings to the connection string (StorageOptions.PostgresConnectionString),
            // which makes its pool another than the one of the string as written.
            var served = new StorageOptions { Provider = Provider, ConnectionString = ConnectionString }.PostgresConnectionString;
            foreach (var connectionString in new[] { ConnectionString, served })
            {
                using var connection = new NpgsqlConnection(connectionString);
                NpgsqlConnection.ClearPool(connection);
            }
        }
        else
        {
            using var connection = new Microsoft.Data.Sqlite.SqliteConnection(ConnectionString);
            Microsoft.Data.Sqlite.SqliteConnection.ClearPool(connection);
        }
    }

    /// <summary>The settings a test server runs with; also applied to CLI runs against the same database.</summary>
    public void Configure(WebApplicationBuilder builder)
    {
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Storage:Provider"] = Provider,
            ["ConnectionStrings:Latchkey"] = ConnectionString,
            ["Storage:MigrateOnStart"] = "true",
            ["urls"] = "http://127.0.0.1:0",
            // Quiet test output: warnings and errors only.
            ["Logging:LogLevel:Default"] = "Warning",
            ["Logging:LogLevel:Microsoft.Hosting.Lifetime"] = "Warning",
            ["Logging:LogLevel:Latchkey"] = "Warning",
            // Lets the dynamic registration tests register confidential clients.
            ["AuthorizationServer:InitialAccessTokens:0"] = InitialAccessToken,
            // Test providers run on loopback, which the SSRF guard refuses otherwise.
            ["Broker:AllowPrivateNetworks"] = "true",
            ["Mcp:AllowPrivateNetworks"] = "true",
            ["Webhooks:AllowPrivateNetworks"] = "true",
            ["Webhooks:FirstRetrySeconds"] = "1",
            ["Webhooks:PollSeconds"] = "1",
            ["AuthorizationServer:ClientMetadataDocuments:AllowPrivateNetworks"] = "true",
            ["Vault:KeyFile"] = VaultKeyFile,
            // Tests sign up and call from one address far faster than any person; RateLimitTests turn them on.
            ["RateLimits:Enabled"] = "false",
        });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        // Client metadata documents come from a loopback https site (ClientMetadataDocumentSite):
        // its certificate is trusted for those fetches, after the server has set up its own handler.
        builder.Services.PostConfigure<HttpClientFactoryOptions>(ClientMetadataDocuments.HttpClientName, options =>
            options.HttpMessageHandlerBuilderActions.Add(handler =>
                ((SocketsHttpHandler)handler.PrimaryHandler).SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                    certificate is not null && certificate.GetCertHashString() == ClientMetadataDocumentSite.Certificate.GetCertHashString()));
        ConfigureServer(builder);
    }

    /// <summary>Extra settings for fixtures that need them.</summary>
    protected virtual void ConfigureServer(WebApplicationBuilder builder)
    {
    }

    /// <summary>
    /// A client that does not follow redirects, so tests see them, with its own cookie jar or
    /// <paramref name="cookies"/> (cookies are per host, not per port: one jar serves every test node).
    /// </summary>
    public HttpClient CreateClient(CookieContainer? cookies = null, Uri? baseAddress = null) =>
        new(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = cookies ?? new CookieContainer(), UseCookies = true })
        {
            BaseAddress = baseAddress ?? BaseAddress,
        };

    public async Task<T> WithDbAsync<T>(Func<LatchkeyDbContext, Task<T>> action)
    {
        await using var scope = Services.CreateAsyncScope();
        return await action(scope.ServiceProvider.GetRequiredService<LatchkeyDbContext>());
    }

    /// <summary>Runs the <c>latchkey</c> command line in-process against this server's database.</summary>
    public async Task<CliRun> RunCliAsync(string[] args, string? input = null)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exitCode = await LatchkeyCommandLine.InvokeAsync(args, Configure, output, error, new StringReader(input ?? ""));
        return new CliRun(exitCode, output.ToString(), error.ToString());
    }

    public virtual async Task DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        await DropDatabaseAsync();
    }
}

public sealed record CliRun(int ExitCode, string Output, string Error);

public class SqliteServer : LatchkeyServerFixture
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "latchkey-tests", Guid.NewGuid().ToString("N"));

    public override string Provider => StorageProvider.Sqlite;

    public string DatabaseFile => Path.Combine(_directory, "latchkey.db");

    protected override Task<string> CreateDatabaseAsync()
    {
        Directory.CreateDirectory(_directory);
        return Task.FromResult($"Data Source={DatabaseFile}");
    }

    protected override Task DropDatabaseAsync()
    {
        ClearOwnPool();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp folder is harmless.
        }
        return Task.CompletedTask;
    }
}

public class PostgresServer : LatchkeyServerFixture
{
    public const string EnvironmentVariable = "LATCHKEY_TEST_POSTGRES";
    private readonly string _database = "latchkey_test_" + Guid.NewGuid().ToString("N");

    public override string Provider => StorageProvider.Postgres;

    public static string AdminConnectionString =>
        Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"PostgreSQL tests need a server: run ./test.sh, which starts a throwaway one, or set {EnvironmentVariable} " +
                "to a connection string of a role that may create databases.");

    protected override async Task<string> CreateDatabaseAsync()
    {
        await using (var connection = new NpgsqlConnection(AdminConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE \"{_database}\"", connection);
            await command.ExecuteNonQueryAsync();
        }
        return new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = _database }.ConnectionString;
    }

    protected override async Task DropDatabaseAsync()
    {
        ClearOwnPool();
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{_database}\" WITH (FORCE)", connection);
        await command.ExecuteNonQueryAsync();
    }
}

using Latchkey.Storage;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;

namespace Latchkey.Cluster;

/// <summary>
/// Keeps one connection to the SQLite database open for as long as the server runs, so that
/// <c>latchkey restore</c>, which needs SQLite's exclusive lock, always finds a running server and
/// refuses instead of replacing the database under it. Pooled connections are not enough: an
/// idle pool may have closed them all.
/// </summary>
internal sealed class SqliteServerPresence(IOptions<StorageOptions> storage) : IHostedService, IDisposable
{
    private SqliteConnection? _connection;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var connectionString = storage.Value.EffectiveConnectionString;
        if (StorageOptions.SqliteFileOf(connectionString) is null)
        {
            return;
        }
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder(connectionString) { Pooling = false }.ToString());
        await connection.OpenAsync(cancellationToken);
        // A first read opens the write-ahead log; from then on the connection holds its shared
        // lock on it, which is what makes the exclusive lock fail.
        await using (var read = connection.CreateCommand())
        {
            read.CommandText = "SELECT count(*) FROM sqlite_master;";
            await read.ExecuteScalarAsync(cancellationToken);
        }
        _connection = connection;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _connection?.Dispose();
        _connection = null;
    }
}

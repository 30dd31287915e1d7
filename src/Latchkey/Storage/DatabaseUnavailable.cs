using System.Net.Sockets;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Latchkey.Storage;

/// <summary>
/// Tells a database that cannot be reached or is briefly overloaded (answered with 503 and
/// <c>Retry-After</c>, since trying again soon will work) from a bug (500).
/// </summary>
public static class DatabaseUnavailable
{
    /// <summary>What clients are told to wait before trying again.</summary>
    public const int RetryAfterSeconds = 5;

    public static bool Is(Exception exception)
    {
        for (var current = exception; current is not null; current = current.InnerException)
        {
            switch (current)
            {
                case PostgresException postgres when IsUnavailable(postgres.SqlState):
                case NpgsqlException { InnerException: SocketException or IOException or TimeoutException }:
                case NpgsqlException { IsTransient: true } and not PostgresException:
                case SqliteException sqlite when IsUnavailable(sqlite.SqliteErrorCode):
                    return true;
            }
        }
        return false;
    }

    private static bool IsUnavailable(string sqlState) =>
        sqlState.StartsWith("08", StringComparison.Ordinal)            // connection exceptions
        || sqlState is PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow
            or PostgresErrorCodes.TooManyConnections or PostgresErrorCodes.LockNotAvailable or PostgresErrorCodes.QueryCanceled
            or PostgresErrorCodes.DiskFull or PostgresErrorCodes.OutOfMemory or PostgresErrorCodes.ReadOnlySqlTransaction;

    // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN.
    private static bool IsUnavailable(int sqliteError) => sqliteError is 5 or 6 or 10 or 13 or 14;
}

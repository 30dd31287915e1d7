using System.Data.Common;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Latchkey.Storage;
using Latchkey.Tests.Infrastructure;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Latchkey.Tests.Fuzz;

/// <summary>
/// A hash of every row of every table the model maps, per table, so that "a rejected request
/// changed nothing" is one comparison. Rows are hashed one by one and sorted, so row order does
/// not matter. What is left out, and why, is listed in <see cref="ExcludedTables"/> and
/// <see cref="ExcludedColumns"/> (and in docs/reliability.md).
/// </summary>
public sealed class DatabaseFingerprint : IAsyncDisposable
{
    /// <summary>
    /// Append-only audit tables: a refused tool call, credential read or sign-in is recorded on
    /// purpose (the audit is how an owner sees refused attempts), so a rejected request may add a
    /// row. Their rows are written by a background writer, so they may also land during a later request.
    /// </summary>
    public static readonly IReadOnlySet<string> ExcludedTables = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "broker_credential_audit",
        "mcp_tool_calls",
        "security_events",
    };

    /// <summary>
    /// "Last used" instants: a request that authenticates with a real key or reads a real
    /// credential and is then refused for its input still used the key (recorded at most once a minute).
    /// </summary>
    public static readonly IReadOnlySet<string> ExcludedColumns = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "api_keys.LastUsedAt",
        "broker_credentials.LastUsedAt",
    };

    private readonly DbConnection _connection;
    private readonly string _query;

    private DatabaseFingerprint(DbConnection connection, string query)
    {
        _connection = connection;
        _query = query;
    }

    public IReadOnlyList<string> Tables { get; private init; } = [];

    public static async Task<DatabaseFingerprint> OpenAsync(LatchkeyServerFixture server)
    {
        var tables = await server.WithDbAsync(db => Task.FromResult(db.Model.GetEntityTypes()
            .Select(e => e.GetTableName())
            .OfType<string>()
            .Distinct()
            .Where(t => !ExcludedTables.Contains(t))
            .Order(StringComparer.Ordinal)
            .ToList()));
        DbConnection connection = server.Provider == StorageProvider.Sqlite
            ? new SqliteConnection(server.ConnectionString)
            : new NpgsqlConnection(server.ConnectionString);
        await connection.OpenAsync();
        // One round trip: a batch of SELECTs, one result set per table.
        var query = string.Join(";\n", tables.Select(t => $"SELECT * FROM \"{t}\""));
        return new DatabaseFingerprint(connection, query) { Tables = tables };
    }

    /// <summary>Table name to the hash of its rows.</summary>
    public async Task<IReadOnlyDictionary<string, string>> TakeAsync()
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        await using var command = _connection.CreateCommand();
        command.CommandText = _query;
        await using var reader = await command.ExecuteReaderAsync();
        var row = new StringBuilder();
        foreach (var table in Tables)
        {
            var rowHashes = new List<string>();
            var included = Enumerable.Range(0, reader.FieldCount).Where(i => !ExcludedColumns.Contains($"{table}.{reader.GetName(i)}")).ToArray();
            while (await reader.ReadAsync())
            {
                row.Clear();
                foreach (var i in included)
                {
                    row.Append(reader.GetName(i)).Append('=').Append(Format(reader.GetValue(i))).Append('\u001f');
                }
                rowHashes.Add(Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(row.ToString()))));
            }
            rowHashes.Sort(StringComparer.Ordinal);
            result[table] = $"{rowHashes.Count}:{Convert.ToHexString(SHA256.HashData(Encoding.ASCII.GetBytes(string.Concat(rowHashes))))[..16]}";
            await reader.NextResultAsync();
        }
        return result;
    }

    /// <summary>The tables whose rows differ, with their row count and hash before and after.</summary>
    public static IReadOnlyList<string> Differences(IReadOnlyDictionary<string, string> before, IReadOnlyDictionary<string, string> after) =>
        before.Keys.Union(after.Keys)
            .Where(t => before.GetValueOrDefault(t) != after.GetValueOrDefault(t))
            .Select(t => $"{t} ({before.GetValueOrDefault(t)} -> {after.GetValueOrDefault(t)})")
            .ToList();

    private static string Format(object value) => value switch
    {
        DBNull => "<null>",
        byte[] bytes => Convert.ToBase64String(bytes),
        DateTime instant => instant.ToString("O", CultureInfo.InvariantCulture),
        DateTimeOffset instant => instant.ToString("O", CultureInfo.InvariantCulture),
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    public ValueTask DisposeAsync() => _connection.DisposeAsync();
}

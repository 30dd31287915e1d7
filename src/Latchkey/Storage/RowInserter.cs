using System.Collections.Concurrent;
using System.Data.Common;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;

namespace Latchkey.Storage;

/// <summary>
/// Inserts many new rows of one entity type as multi-row <c>INSERT</c> statements, built from the
/// EF Core model (table and column names, each column's type mapping and value converter), in one
/// transaction. For append-only rows that nothing reads back at once (audit logs): EF Core's
/// change tracking and per-row commands were a fifth of the CPU of an audited broker read.
/// Database-generated columns (the identity key) are left to the database; the entities are not
/// tracked and do not get their generated values.
/// </summary>
internal static class RowInserter
{
    /// <summary>
    /// Rows per INSERT statement. On PostgreSQL many (a round trip per statement; 200 rows stay well
    /// under its 65,535 parameters). On SQLite one, prepared once and run for each row: there is no
    /// round trip to save, and Microsoft.Data.Sqlite binds each parameter by name, which SQLite
    /// finds by comparing it with every name in the statement, so a statement of 200 rows' parameters
    /// cost millions of string comparisons (a fifth of the token endpoint's CPU in a profile).
    /// </summary>
    public static int RowsPerStatement(DbConnection connection) => connection is Microsoft.Data.Sqlite.SqliteConnection ? 1 : 200;

    /// <summary>
    /// Runs the INSERTs of <paramref name="rowCount"/> rows of <paramref name="columns"/> values each,
    /// <see cref="RowsPerStatement"/> rows a statement: <paramref name="statement"/> writes the text
    /// of a statement of n rows and adds its parameters, made once for each shape;
    /// <paramref name="setValues"/> sets them to the rows from start, count rows.
    /// </summary>
    public static async Task InsertInStatementsAsync(DbConnection connection, DbTransaction transaction, int rowCount, int columns,
        Func<DbCommand, int, string> statement, Action<DbCommand, int, int> setValues, CancellationToken cancellationToken)
    {
        var rowsPerStatement = RowsPerStatement(connection);
        DbCommand? command = null;
        try
        {
            for (var start = 0; start < rowCount; start += rowsPerStatement)
            {
                var count = Math.Min(rowCount - start, rowsPerStatement);
                if (command is null || command.Parameters.Count != count * columns)
                {
                    if (command is not null)
                    {
                        await command.DisposeAsync();
                    }
                    command = connection.CreateCommand();
                    command.Transaction = transaction;
                    command.CommandText = statement(command, count);
                }
                setValues(command, start, count);
                await command.ExecuteNonQueryAsync(cancellationToken);
            }
        }
        finally
        {
            if (command is not null)
            {
                await command.DisposeAsync();
            }
        }
    }

    private static readonly ConcurrentDictionary<(IModel Model, Type Entity), Table> Tables = new();

    public static async Task InsertAsync<TEntity>(LatchkeyDbContext db, IReadOnlyList<TEntity> rows, CancellationToken cancellationToken)
        where TEntity : class
    {
        if (rows.Count == 0)
        {
            return;
        }
        var table = Tables.GetOrAdd((db.Model, typeof(TEntity)), static (key, db) => Table.Of(db, key.Entity), db);
        // One write at a time in this process on SQLite, as for EF Core's saves; the transaction is one turn.
        var writeGate = db.WriteGate;
        var entered = writeGate is not null && await writeGate.EnterAsync(cancellationToken);
        try
        {
            await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
            await InsertInStatementsAsync(db.Database.GetDbConnection(), transaction.GetDbTransaction(), rows.Count, table.Columns.Count,
                table.Statement, (command, start, count) => table.SetValues(command, rows, start, count), cancellationToken);
            await transaction.CommitAsync(cancellationToken);
        }
        finally
        {
            if (entered)
            {
                writeGate!.Exit();
            }
        }
    }

    /// <summary>The entity type's table and the columns an insert names, with how to read and send each value.</summary>
    private sealed class Table(string prefix, IReadOnlyList<Column> columns)
    {
        public static Table Of(DbContext db, Type type)
        {
            var names = StoreNames.Of(db, type);
            var columns = new List<Column>();
            foreach (var property in names.Entity.GetProperties())
            {
                if (property.ValueGenerated != ValueGenerated.Never)
                {
                    continue;
                }
                if (property.IsShadowProperty())
                {
                    throw new NotSupportedException($"{type.Name}.{property.Name} is a shadow property; RowInserter writes only what the entity holds.");
                }
                columns.Add(new Column(names.Column(property), property.GetGetter(), property.GetRelationalTypeMapping(), property.IsNullable));
            }
            var prefix = $"INSERT INTO {names.Table} ({string.Join(", ", columns.Select(c => c.Name))}) VALUES ";
            return new Table(prefix, columns);
        }

        public IReadOnlyList<Column> Columns => columns;

        /// <summary>An INSERT of <paramref name="rows"/> rows; adds its parameters (values to be set) to the command.</summary>
        public string Statement(DbCommand command, int rows)
        {
            var text = new StringBuilder(prefix);
            for (var row = 0; row < rows; row++)
            {
                text.Append(row == 0 ? "(" : ", (");
                for (var c = 0; c < columns.Count; c++)
                {
                    var name = $"@p{row}_{c}";
                    command.Parameters.Add(columns[c].Mapping.CreateParameter(command, name, null, columns[c].Nullable));
                    text.Append(c == 0 ? "" : ", ").Append(name);
                }
                text.Append(')');
            }
            return text.ToString();
        }

        /// <summary>Sets the statement's parameters to rows <paramref name="start"/> to <paramref name="start"/> + <paramref name="count"/>.</summary>
        public void SetValues<TEntity>(DbCommand command, IReadOnlyList<TEntity> rows, int start, int count) where TEntity : class
        {
            for (var row = 0; row < count; row++)
            {
                for (var c = 0; c < columns.Count; c++)
                {
                    var column = columns[c];
                    var value = column.Getter.GetClrValueUsingContainingEntity(rows[start + row]);
                    // The column's value converter (SQLite's instants as integers, for one), as EF Core applies it.
                    command.Parameters[row * columns.Count + c].Value =
                        (column.Mapping.Converter is { } converter ? converter.ConvertToProvider(value) : value) ?? DBNull.Value;
                }
            }
        }
    }

    internal sealed record Column(string Name, IClrPropertyGetter Getter, RelationalTypeMapping Mapping, bool Nullable);
}

using System.Collections.Concurrent;
using System.Data.Common;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
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
    // Well under SQLite's 32,766 and PostgreSQL's 65,535 parameters per statement for any audit row.
    private const int RowsPerStatement = 200;

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
            var connection = db.Database.GetDbConnection();
            for (var start = 0; start < rows.Count; start += RowsPerStatement)
            {
                await using var command = connection.CreateCommand();
                command.Transaction = transaction.GetDbTransaction();
                command.CommandText = table.Statement(command, rows, start, Math.Min(rows.Count, start + RowsPerStatement));
                await command.ExecuteNonQueryAsync(cancellationToken);
            }
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
            var entity = db.Model.FindEntityType(type) ?? throw new InvalidOperationException($"{type.Name} is not in the model.");
            var store = StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
            var sql = db.GetService<ISqlGenerationHelper>();
            var columns = new List<Column>();
            foreach (var property in entity.GetProperties())
            {
                if (property.ValueGenerated != ValueGenerated.Never)
                {
                    continue;
                }
                if (property.IsShadowProperty())
                {
                    throw new NotSupportedException($"{type.Name}.{property.Name} is a shadow property; RowInserter writes only what the entity holds.");
                }
                columns.Add(new Column(sql.DelimitIdentifier(property.GetColumnName(store)!), property.GetGetter(),
                    property.GetRelationalTypeMapping(), property.IsNullable));
            }
            var prefix = $"INSERT INTO {sql.DelimitIdentifier(store.Name, store.Schema)} ({string.Join(", ", columns.Select(c => c.Name))}) VALUES ";
            return new Table(prefix, columns);
        }

        public string Statement<TEntity>(DbCommand command, IReadOnlyList<TEntity> rows, int start, int end) where TEntity : class
        {
            var text = new StringBuilder(prefix);
            for (var row = start; row < end; row++)
            {
                text.Append(row == start ? "(" : ", (");
                for (var c = 0; c < columns.Count; c++)
                {
                    var column = columns[c];
                    var name = $"@p{row - start}_{c}";
                    // The type mapping applies the column's value converter (SQLite's timestamps as text, for one).
                    command.Parameters.Add(column.Mapping.CreateParameter(command, name, column.Getter.GetClrValueUsingContainingEntity(rows[row]), column.Nullable));
                    text.Append(c == 0 ? "" : ", ").Append(name);
                }
                text.Append(')');
            }
            return text.ToString();
        }
    }

    private sealed record Column(string Name, IClrPropertyGetter Getter, RelationalTypeMapping Mapping, bool Nullable);
}

using System.Data.Common;
using System.Text;
using System.Threading.Channels;
using Latchkey.Features.AuthorizationServer.Stores;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Latchkey.Features.AuthorizationServer.Tokens;

/// <summary>
/// What one token request writes: the rows of the tokens it issues and, for a refresh or a code, the
/// token it redeems (only if that token is still valid when the write happens).
/// </summary>
internal sealed class TokenWrite(IReadOnlyList<TokenRow> inserts, string? redeemTokenId = null)
{
    public IReadOnlyList<TokenRow> Inserts { get; } = inserts;

    public string? RedeemTokenId { get; } = redeemTokenId;

    internal TaskCompletionSource<TokenWriteOutcome> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

internal enum TokenWriteOutcome
{
    /// <summary>Committed: the tokens exist and the redeemed one is marked so.</summary>
    Committed,

    /// <summary>The token to redeem was no longer valid (redeemed or revoked meanwhile): nothing was written for this request.</summary>
    NotRedeemable,

    /// <summary>The batch could not be written (nothing of it was committed); the request takes the general path.</summary>
    Failed,
}

/// <summary>
/// Group commit for the direct grants: requests queue their writes, and one writer puts everything
/// queued into one transaction (the refresh tokens and codes it redeems are marked by one conditional
/// update, so each is redeemed once however many ask), commits, and only then lets each request answer. A token is
/// therefore durably written before its answer, as with a write per request, but a busy token
/// endpoint pays for one commit per batch instead of one per token, and on SQLite takes the
/// process's write gate once per batch.
/// </summary>
internal sealed partial class TokenCommitQueue(IServiceScopeFactory scopes, TimeProvider time, ILogger<TokenCommitQueue> logger, SqliteWriteGate? writeGate = null)
    : IDisposable
{
    /// <summary>Large enough that a burst from every connection fits one transaction, small enough to keep a transaction short.</summary>
    internal const int MaxBatch = 256;

    private readonly Channel<TokenWrite> _queue = Channel.CreateUnbounded<TokenWrite>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _starting = new();
    private Task? _writer;

    public Task<TokenWriteOutcome> WriteAsync(TokenWrite write)
    {
        EnsureWriter();
        if (!_queue.Writer.TryWrite(write))
        {
            return Task.FromResult(TokenWriteOutcome.Failed);
        }
        return write.Completion.Task;
    }

    private void EnsureWriter()
    {
        if (_writer is not null)
        {
            return;
        }
        lock (_starting)
        {
            _writer ??= Task.Run(WriteLoopAsync);
        }
    }

    private async Task WriteLoopAsync()
    {
        var batch = new List<TokenWrite>(MaxBatch);
        var reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync(_stopping.Token))
            {
                while (batch.Count < MaxBatch && reader.TryRead(out var write))
                {
                    batch.Add(write);
                }
                await CommitAsync(batch);
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
        // Whatever is left when the host stops takes the general path (or fails with the host).
        foreach (var write in batch)
        {
            write.Completion.TrySetResult(TokenWriteOutcome.Failed);
        }
        while (reader.TryRead(out var left))
        {
            left.Completion.TrySetResult(TokenWriteOutcome.Failed);
        }
    }

    private async Task CommitAsync(List<TokenWrite> batch)
    {
        var outcomes = new TokenWriteOutcome[batch.Count];
        var entered = false;
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<LatchkeyDbContext>();
            var table = _table ??= TokenTable.Of(db);
            // One write at a time in this process on SQLite; the transaction below is one turn of it.
            entered = writeGate is not null && await writeGate.EnterAsync(_stopping.Token);
            await using var transaction = await db.Database.BeginTransactionAsync(_stopping.Token);
            var connection = db.Database.GetDbConnection();
            var dbTransaction = transaction.GetDbTransaction();

            // Two statements for the whole batch, in plain SQL: EF Core's per-statement and per-entity
            // work was most of this writer's time. Neither changes a cached answer (new rows, and
            // refresh tokens marked redeemed: only access tokens are cached), so none is announced.
            var redeemed = await RedeemAsync(connection, dbTransaction, table, batch);
            var inserts = new List<TokenRow>(batch.Count * 2);
            var claimed = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < batch.Count; i++)
            {
                // A token named twice in one batch (the same refresh sent twice at once) goes to the first only.
                if (batch[i].RedeemTokenId is { } id && (!redeemed.Contains(id) || !claimed.Add(id)))
                {
                    outcomes[i] = TokenWriteOutcome.NotRedeemable;
                    continue;
                }
                inserts.AddRange(batch[i].Inserts);
                outcomes[i] = TokenWriteOutcome.Committed;
            }
            await InsertAsync(connection, dbTransaction, table, inserts);
            await transaction.CommitAsync(_stopping.Token);
        }
        catch (Exception exception) when (exception is not OperationCanceledException || !_stopping.IsCancellationRequested)
        {
            // Nothing of the batch was committed: every request in it takes the general path, which writes on its own.
            LogBatchFailed(logger, exception, batch.Count);
            Array.Fill(outcomes, TokenWriteOutcome.Failed);
        }
        finally
        {
            if (entered)
            {
                writeGate!.Exit();
            }
        }
        for (var i = 0; i < batch.Count; i++)
        {
            batch[i].Completion.TrySetResult(outcomes[i]);
        }
    }

    private TokenTable? _table;

    /// <summary>Marks the batch's refresh tokens redeemed where they are still valid; answers the ids it marked.</summary>
    private async Task<HashSet<string>> RedeemAsync(DbConnection connection, DbTransaction transaction, TokenTable table, List<TokenWrite> batch)
    {
        var ids = batch.Select(write => write.RedeemTokenId).OfType<string>().Distinct(StringComparer.Ordinal).ToList();
        var marked = new HashSet<string>(StringComparer.Ordinal);
        if (ids.Count == 0)
        {
            return marked;
        }
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        var names = new string[ids.Count];
        for (var i = 0; i < ids.Count; i++)
        {
            names[i] = Parameter(command, "r" + i, ids[i]);
        }
        command.CommandText =
            $"UPDATE {table.Name} SET {table.Status} = {Parameter(command, "redeemed", Statuses.Redeemed)}, " +
            $"{table.RedemptionDate} = {Parameter(command, "now", time.GetUtcNow().UtcDateTime)} " +
            $"WHERE {table.Status} = {Parameter(command, "valid", Statuses.Valid)} AND {table.Id} IN ({string.Join(", ", names)}) RETURNING {table.Id}";
        await using var reader = await command.ExecuteReaderAsync(_stopping.Token);
        while (await reader.ReadAsync(_stopping.Token))
        {
            marked.Add(reader.GetString(0));
        }
        return marked;
    }

    /// <summary>
    /// Inserts the rows: on PostgreSQL a few hundred to a statement (one round trip each, well
    /// under its limit on parameters); on SQLite one row's statement, prepared once and run for
    /// each row (see <see cref="RowInserter.RowsPerStatement"/>).
    /// </summary>
    private Task InsertAsync(DbConnection connection, DbTransaction transaction, TokenTable table, List<TokenRow> rows) =>
        RowInserter.InsertInStatementsAsync(connection, transaction, rows.Count, TokenTable.Columns, table.Insert, (command, start, count) =>
        {
            var values = command.Parameters;
            for (var n = 0; n < count; n++)
            {
                var (row, token) = (rows[start + n], rows[start + n].Token);
                var first = n * TokenTable.Columns;
                values[first].Value = token.Id;
                values[first + 1].Value = row.ApplicationId ?? (object)DBNull.Value;
                values[first + 2].Value = row.AuthorizationId ?? (object)DBNull.Value;
                values[first + 3].Value = token.ConcurrencyToken ?? (object)DBNull.Value;
                values[first + 4].Value = token.CreationDate ?? (object)DBNull.Value;
                values[first + 5].Value = token.ExpirationDate ?? (object)DBNull.Value;
                values[first + 6].Value = token.Properties ?? (object)DBNull.Value;
                values[first + 7].Value = token.ReferenceId ?? (object)DBNull.Value;
                values[first + 8].Value = token.Status ?? (object)DBNull.Value;
                values[first + 9].Value = token.Subject ?? (object)DBNull.Value;
                values[first + 10].Value = token.Type ?? (object)DBNull.Value;
            }
        }, _stopping.Token);

    private static string Parameter(DbCommand command, string name, object? value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = "@" + name;
        parameter.Value = value ?? DBNull.Value;
        command.Parameters.Add(parameter);
        return parameter.ParameterName;
    }

    /// <summary>The token table's delimited names, as the EF Core model maps them.</summary>
    private sealed record TokenTable(string Name, string Id, string ApplicationId, string AuthorizationId, string ConcurrencyToken, string CreationDate,
        string ExpirationDate, string Properties, string RedemptionDate, string ReferenceId, string Status, string Subject, string Type)
    {
        /// <summary>The columns an insert names, in the order <see cref="Insert"/> lists them.</summary>
        public const int Columns = 11;

        /// <summary>An INSERT of <paramref name="rows"/> rows; adds its parameters (values to be set) to the command.</summary>
        public string Insert(DbCommand command, int rows)
        {
            var values = new StringBuilder();
            for (var n = 0; n < rows; n++)
            {
                values.Append(n == 0 ? "(" : ", (");
                for (var c = 0; c < Columns; c++)
                {
                    values.Append(c == 0 ? "" : ", ").Append(Parameter(command, $"v{n}_{c}", null));
                }
                values.Append(')');
            }
            return $"INSERT INTO {Name} ({Id}, {ApplicationId}, {AuthorizationId}, {ConcurrencyToken}, {CreationDate}, {ExpirationDate}, " +
                   $"{Properties}, {ReferenceId}, {Status}, {Subject}, {Type}) VALUES {values}";
        }

        public static TokenTable Of(DbContext db)
        {
            var names = StoreNames.Of(db, typeof(OAuthToken));
            return new TokenTable(names.Table, names.Column(nameof(OAuthToken.Id)), names.Column("ApplicationId"), names.Column("AuthorizationId"),
                names.Column(nameof(OAuthToken.ConcurrencyToken)), names.Column(nameof(OAuthToken.CreationDate)), names.Column(nameof(OAuthToken.ExpirationDate)),
                names.Column(nameof(OAuthToken.Properties)), names.Column(nameof(OAuthToken.RedemptionDate)), names.Column(nameof(OAuthToken.ReferenceId)),
                names.Column(nameof(OAuthToken.Status)), names.Column(nameof(OAuthToken.Subject)), names.Column(nameof(OAuthToken.Type)));
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "A batch of {Count} token writes failed; OpenIddict's token endpoint handles those requests one by one")]
    private static partial void LogBatchFailed(ILogger logger, Exception exception, int count);

    public void Dispose()
    {
        // Not disposed: the writer loop may still be looking at its token as it stops.
        _stopping.Cancel();
        _queue.Writer.TryComplete();
    }
}

using System.Data.Common;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Latchkey.Storage;

/// <summary>
/// SQLite takes one writer at a time. Writers of this process that find the database locked would
/// wait in SQLite's busy handler, which sleeps 1, 2, 5, 10, ... ms between tries: under
/// concurrent writes most of a write's time goes to sleeping, and the order is luck. This gate
/// queues the process's writes in order on an async lock instead, so the database lock passes from
/// one to the next without sleeping. Saves are gated by <see cref="SqliteLatchkeyDbContext"/>
/// (enter, save, exit in a finally); bulk updates and deletes by this interceptor. Writes inside
/// an explicit transaction are not gated: its IMMEDIATE begin already holds SQLite's lock, and
/// gated writers then wait in SQLite's busy handler as before. Other processes (the CLI) meet
/// SQLite's own lock. Reads never wait.
/// </summary>
public sealed class SqliteWriteGate : DbCommandInterceptor, IDisposable
{
    // Longer than any write should take; after it a writer goes ahead and meets SQLite's own lock,
    // so a mistake here can slow writes down but never hang them.
    private static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(10);

    private readonly SemaphoreSlim _gate = new(1, 1);
    // The bulk commands that hold the gate (EF creates a command per execution).
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<DbCommand, object> _holding = [];

    public void Dispose() => _gate.Dispose();

    /// <summary>1 when no write holds the gate (for tests).</summary>
    internal int Available => _gate.CurrentCount;

    /// <summary>Waits for the gate; true when it was taken and must be given back with <see cref="Exit"/>.</summary>
    public Task<bool> EnterAsync(CancellationToken cancellationToken) => _gate.WaitAsync(MaxWait, cancellationToken);

    public bool Enter() => _gate.Wait(MaxWait);

    public void Exit() => _gate.Release();

    public override async ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<int> result,
        CancellationToken cancellationToken = default)
    {
        if (IsBulkWrite(eventData) && await EnterAsync(cancellationToken))
        {
            _holding.AddOrUpdate(command, command);
        }
        return result;
    }

    public override InterceptionResult<int> NonQueryExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<int> result)
    {
        if (IsBulkWrite(eventData) && Enter())
        {
            _holding.AddOrUpdate(command, command);
        }
        return result;
    }

    public override ValueTask<int> NonQueryExecutedAsync(DbCommand command, CommandExecutedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        ExitFor(command);
        return ValueTask.FromResult(result);
    }

    public override int NonQueryExecuted(DbCommand command, CommandExecutedEventData eventData, int result)
    {
        ExitFor(command);
        return result;
    }

    public override void CommandFailed(DbCommand command, CommandErrorEventData eventData) => ExitFor(command);

    public override Task CommandFailedAsync(DbCommand command, CommandErrorEventData eventData, CancellationToken cancellationToken = default)
    {
        ExitFor(command);
        return Task.CompletedTask;
    }

    public override void CommandCanceled(DbCommand command, CommandEndEventData eventData) => ExitFor(command);

    public override Task CommandCanceledAsync(DbCommand command, CommandEndEventData eventData, CancellationToken cancellationToken = default)
    {
        ExitFor(command);
        return Task.CompletedTask;
    }

    // Bulk statements outside a transaction; what SaveChanges sends is gated by the save itself.
    private static bool IsBulkWrite(CommandEventData eventData) =>
        eventData.CommandSource is CommandSource.ExecuteUpdate or CommandSource.ExecuteDelete
        && eventData.Context?.Database.CurrentTransaction is null;

    private void ExitFor(DbCommand command)
    {
        if (_holding.Remove(command))
        {
            _gate.Release();
        }
    }
}

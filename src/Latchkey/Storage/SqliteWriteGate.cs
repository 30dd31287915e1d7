using System.Data.Common;
using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Latchkey.Storage;

/// <summary>
/// SQLite takes one writer at a time. Writers of this process that find the database locked would
/// wait in SQLite's busy handler, which sleeps 1, 2, 5, 10, ... ms between tries: under
/// concurrent writes most of a write's time goes to sleeping, and the order is luck. This gate
/// queues the process's writers in order on an async lock instead (saves, explicit transactions,
/// bulk updates and deletes), so the database lock passes from one to the next without sleeping.
/// Other processes (the CLI) still meet SQLite's own lock. Reads never wait.
/// </summary>
internal sealed class SqliteWriteGate : ISaveChangesInterceptor, IDbTransactionInterceptor, IDbCommandInterceptor, IDisposable
{
    // Longer than any write should take; after it a writer goes ahead and meets SQLite's own lock,
    // so a mistake here can slow writes down but never hang them.
    private static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(10);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly ConditionalWeakTable<DbContext, Holder> _holders = [];

    private sealed class Holder
    {
        public bool Held;
    }

    public void Dispose() => _gate.Dispose();

    public async ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
    {
        await EnterAsync(eventData.Context, cancellationToken);
        return result;
    }

    public InterceptionResult<int> SavingChanges(DbContextEventData eventData, InterceptionResult<int> result)
    {
        Enter(eventData.Context);
        return result;
    }

    public ValueTask<int> SavedChangesAsync(SaveChangesCompletedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        ExitUnlessInTransaction(eventData.Context);
        return ValueTask.FromResult(result);
    }

    public int SavedChanges(SaveChangesCompletedEventData eventData, int result)
    {
        ExitUnlessInTransaction(eventData.Context);
        return result;
    }

    public void SaveChangesFailed(DbContextErrorEventData eventData) => ExitUnlessInTransaction(eventData.Context);

    public Task SaveChangesFailedAsync(DbContextErrorEventData eventData, CancellationToken cancellationToken = default)
    {
        ExitUnlessInTransaction(eventData.Context);
        return Task.CompletedTask;
    }

    public void SaveChangesCanceled(DbContextEventData eventData) => ExitUnlessInTransaction(eventData.Context);

    public Task SaveChangesCanceledAsync(DbContextEventData eventData, CancellationToken cancellationToken = default)
    {
        ExitUnlessInTransaction(eventData.Context);
        return Task.CompletedTask;
    }

    // Microsoft.Data.Sqlite begins transactions IMMEDIATE: the write lock is taken at BEGIN and kept to the end.
    public async ValueTask<InterceptionResult<DbTransaction>> TransactionStartingAsync(DbConnection connection, TransactionStartingEventData eventData,
        InterceptionResult<DbTransaction> result, CancellationToken cancellationToken = default)
    {
        await EnterAsync(eventData.Context, cancellationToken);
        return result;
    }

    public InterceptionResult<DbTransaction> TransactionStarting(DbConnection connection, TransactionStartingEventData eventData, InterceptionResult<DbTransaction> result)
    {
        Enter(eventData.Context);
        return result;
    }

    public void TransactionCommitted(DbTransaction transaction, TransactionEndEventData eventData) => Exit(eventData.Context);

    public Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        Exit(eventData.Context);
        return Task.CompletedTask;
    }

    public void TransactionRolledBack(DbTransaction transaction, TransactionEndEventData eventData) => Exit(eventData.Context);

    public Task TransactionRolledBackAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        Exit(eventData.Context);
        return Task.CompletedTask;
    }

    public void TransactionFailed(DbTransaction transaction, TransactionErrorEventData eventData) => Exit(eventData.Context);

    public Task TransactionFailedAsync(DbTransaction transaction, TransactionErrorEventData eventData, CancellationToken cancellationToken = default)
    {
        Exit(eventData.Context);
        return Task.CompletedTask;
    }

    // A transaction disposed without commit or rollback (an exception on the way) ends here.
    public void TransactionDisposed(DbTransaction transaction, TransactionEndEventData eventData) => Exit(eventData.Context);

    public Task TransactionDisposedAsync(DbTransaction transaction, TransactionEndEventData eventData)
    {
        Exit(eventData.Context);
        return Task.CompletedTask;
    }

    public async ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<int> result,
        CancellationToken cancellationToken = default)
    {
        if (IsBulkWrite(eventData))
        {
            await EnterAsync(eventData.Context, cancellationToken);
        }
        return result;
    }

    public InterceptionResult<int> NonQueryExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<int> result)
    {
        if (IsBulkWrite(eventData))
        {
            Enter(eventData.Context);
        }
        return result;
    }

    public ValueTask<int> NonQueryExecutedAsync(DbCommand command, CommandExecutedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        if (IsBulkWrite(eventData))
        {
            ExitUnlessInTransaction(eventData.Context);
        }
        return ValueTask.FromResult(result);
    }

    public int NonQueryExecuted(DbCommand command, CommandExecutedEventData eventData, int result)
    {
        if (IsBulkWrite(eventData))
        {
            ExitUnlessInTransaction(eventData.Context);
        }
        return result;
    }

    public void CommandFailed(DbCommand command, CommandErrorEventData eventData)
    {
        if (IsBulkWrite(eventData))
        {
            ExitUnlessInTransaction(eventData.Context);
        }
    }

    public Task CommandFailedAsync(DbCommand command, CommandErrorEventData eventData, CancellationToken cancellationToken = default)
    {
        CommandFailed(command, eventData);
        return Task.CompletedTask;
    }

    public void CommandCanceled(DbCommand command, CommandEndEventData eventData)
    {
        if (IsBulkWrite(eventData))
        {
            ExitUnlessInTransaction(eventData.Context);
        }
    }

    public Task CommandCanceledAsync(DbCommand command, CommandEndEventData eventData, CancellationToken cancellationToken = default)
    {
        CommandCanceled(command, eventData);
        return Task.CompletedTask;
    }

    // Commands that SaveChanges sends are covered by the save itself.
    private static bool IsBulkWrite(CommandEventData eventData) =>
        eventData.CommandSource is CommandSource.ExecuteUpdate or CommandSource.ExecuteDelete or CommandSource.ExecuteSqlRaw;

    private async ValueTask EnterAsync(DbContext? context, CancellationToken cancellationToken)
    {
        if (context is null)
        {
            return;
        }
        var holder = _holders.GetValue(context, _ => new Holder());
        if (!holder.Held)
        {
            holder.Held = await _gate.WaitAsync(MaxWait, cancellationToken);
        }
    }

    private void Enter(DbContext? context)
    {
        if (context is null)
        {
            return;
        }
        var holder = _holders.GetValue(context, _ => new Holder());
        if (!holder.Held)
        {
            holder.Held = _gate.Wait(MaxWait);
        }
    }

    private void ExitUnlessInTransaction(DbContext? context)
    {
        if (context?.Database.CurrentTransaction is null)
        {
            Exit(context);
        }
    }

    private void Exit(DbContext? context)
    {
        if (context is not null && _holders.TryGetValue(context, out var holder) && holder.Held)
        {
            holder.Held = false;
            _gate.Release();
        }
    }
}

using System.Collections.Frozen;
using System.Data.Common;
using System.Runtime.CompilerServices;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Latchkey.Cluster;

/// <summary>Tells other nodes, or on SQLite a running server, that a scope changed here (<see cref="ClusterLink"/> on PostgreSQL, <see cref="SqliteChangeFeed"/> on SQLite).</summary>
public interface ICacheAnnouncer
{
    void Announce(CacheScope scope);
}

/// <summary>
/// Rows of <see cref="EntityType"/> are what cached answers of <see cref="Scope"/> depend on. A
/// feature declares its own with <see cref="CacheInvalidationSetup.AddCacheInvalidation{TEntity}"/>.
/// </summary>
/// <param name="OnInsert">Whether a new row changes a cached answer too (most do not: nothing cached names it yet).</param>
/// <param name="Unchanged">An update that leaves every cached answer as it was (a token being issued while it stays valid).</param>
public sealed record CacheInvalidationTarget(Type EntityType, CacheScope Scope, bool OnInsert, Func<object, bool>? Unchanged);

public static class CacheInvalidationSetup
{
    /// <summary>Changes to rows of <typeparamref name="TEntity"/> move the revision of <paramref name="scope"/> on, here and on every node.</summary>
    public static IServiceCollection AddCacheInvalidation<TEntity>(this IServiceCollection services, CacheScope scope,
        bool onInsert = false, Func<TEntity, bool>? unchangedWhenModified = null) where TEntity : class =>
        services.AddSingleton(new CacheInvalidationTarget(typeof(TEntity), scope, onInsert,
            unchangedWhenModified is null ? null : entity => unchangedWhenModified((TEntity)entity)));
}

/// <summary>
/// Moves cache revisions on when rows that cached answers depend on change: tracked saves,
/// bulk updates and deletes, after their transaction commits. What depends on what is declared
/// by the features (<see cref="CacheInvalidationTarget"/>); bulk commands are matched by the tables
/// the model gives those entities.
/// </summary>
internal sealed class CacheInvalidationInterceptor(CacheRevisions revisions, ICacheAnnouncer announcer, IEnumerable<CacheInvalidationTarget> targets)
    : ISaveChangesInterceptor, IDbCommandInterceptor, IDbTransactionInterceptor
{
    private readonly FrozenDictionary<Type, CacheInvalidationTarget> _byType = targets.ToFrozenDictionary(t => t.EntityType);
    private (string Table, CacheScope Scope)[]? _tables;

    // Scopes changed inside a transaction that has not committed yet, per context.
    private readonly ConditionalWeakTable<DbContext, HashSet<CacheScope>> _pending = [];

    public InterceptionResult<int> SavingChanges(DbContextEventData eventData, InterceptionResult<int> result)
    {
        Collect(eventData.Context);
        return result;
    }

    public ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
    {
        Collect(eventData.Context);
        return ValueTask.FromResult(result);
    }

    public int SavedChanges(SaveChangesCompletedEventData eventData, int result)
    {
        FlushUnlessInTransaction(eventData.Context);
        return result;
    }

    public ValueTask<int> SavedChangesAsync(SaveChangesCompletedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        FlushUnlessInTransaction(eventData.Context);
        return ValueTask.FromResult(result);
    }

    public void SaveChangesFailed(DbContextErrorEventData eventData) => Discard(eventData.Context);

    public Task SaveChangesFailedAsync(DbContextErrorEventData eventData, CancellationToken cancellationToken = default)
    {
        Discard(eventData.Context);
        return Task.CompletedTask;
    }

    public int NonQueryExecuted(DbCommand command, CommandExecutedEventData eventData, int result)
    {
        Bulk(command, eventData);
        return result;
    }

    public ValueTask<int> NonQueryExecutedAsync(DbCommand command, CommandExecutedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        Bulk(command, eventData);
        return ValueTask.FromResult(result);
    }

    public void TransactionCommitted(DbTransaction transaction, TransactionEndEventData eventData) => Flush(eventData.Context);

    public Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        Flush(eventData.Context);
        return Task.CompletedTask;
    }

    public void TransactionRolledBack(DbTransaction transaction, TransactionEndEventData eventData) => Discard(eventData.Context);

    public Task TransactionRolledBackAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        Discard(eventData.Context);
        return Task.CompletedTask;
    }

    private void Collect(DbContext? context)
    {
        if (context is null)
        {
            return;
        }
        foreach (var entry in context.ChangeTracker.Entries())
        {
            if (ScopeOf(entry) is { } scope)
            {
                Pending(context).Add(scope);
            }
        }
    }

    private CacheScope? ScopeOf(EntityEntry entry)
    {
        if (!_byType.TryGetValue(entry.Entity.GetType(), out var target))
        {
            return null;
        }
        return entry.State switch
        {
            EntityState.Modified when target.Unchanged?.Invoke(entry.Entity) == true => null,
            EntityState.Modified or EntityState.Deleted => target.Scope,
            EntityState.Added when target.OnInsert => target.Scope,
            _ => null,
        };
    }

    private void Bulk(DbCommand command, CommandExecutedEventData eventData)
    {
        if (eventData.CommandSource is not (CommandSource.ExecuteUpdate or CommandSource.ExecuteDelete or CommandSource.ExecuteSqlRaw))
        {
            return;
        }
        if (eventData.Context is not { } context || context is LatchkeyDbContext { ChangesNothingCached: true })
        {
            return;
        }
        foreach (var (table, scope) in Tables(context))
        {
            if (command.CommandText.Contains(table, StringComparison.OrdinalIgnoreCase))
            {
                if (context.Database.CurrentTransaction is not null)
                {
                    Pending(context).Add(scope);
                }
                else
                {
                    Changed(scope);
                }
            }
        }
    }

    /// <summary>The declared entities' tables, as the model names them (the same for every context of the process).</summary>
    private (string Table, CacheScope Scope)[] Tables(DbContext context) =>
        _tables ??= [.. _byType.Values
            .Select(target => (Table: context.Model.FindEntityType(target.EntityType)?.GetTableName(), target.Scope))
            .Where(table => table.Table is not null)
            .Select(table => (table.Table!, table.Scope))];

    private HashSet<CacheScope> Pending(DbContext context) => _pending.GetValue(context, _ => []);

    private void FlushUnlessInTransaction(DbContext? context)
    {
        if (context is not null && context.Database.CurrentTransaction is null)
        {
            Flush(context);
        }
    }

    private void Flush(DbContext? context)
    {
        if (context is null || !_pending.TryGetValue(context, out var scopes))
        {
            return;
        }
        foreach (var scope in scopes)
        {
            Changed(scope);
        }
        scopes.Clear();
    }

    private void Changed(CacheScope scope)
    {
        revisions.Invalidate(scope);
        announcer.Announce(scope);
    }

    private void Discard(DbContext? context)
    {
        if (context is not null && _pending.TryGetValue(context, out var scopes))
        {
            // A failed save or rolled-back transaction changed nothing; invalidating anyway is harmless and safer.
            foreach (var scope in scopes)
            {
                revisions.Invalidate(scope);
            }
            scopes.Clear();
        }
    }
}

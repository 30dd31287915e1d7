using System.Collections.Concurrent;
using System.ComponentModel.DataAnnotations;
using System.Data.Common;
using System.Runtime.CompilerServices;
using Latchkey.Features.Accounts;
using Latchkey.Features.ApiKeys;
using Latchkey.Features.AuthorizationServer;
using Latchkey.Features.Broker.Credentials;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.Options;

namespace Latchkey.Storage;

/// <summary>Bound from <c>Caching</c>: the in-memory caches in front of the hot-path look-ups.</summary>
public sealed class CachingOptions
{
    public const string SectionName = "Caching";

    /// <summary>Turn the caches off (every check reads the database).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// The longest an entry is used before it is read again. A change made on this node is seen at
    /// once; a change made by another node or by the CLI is seen within this many seconds.
    /// </summary>
    [Range(0, 3600)]
    public int MaxAgeSeconds { get; set; } = 10;

    /// <summary>Entries per cache; a full cache starts over empty.</summary>
    [Range(100, 10_000_000)]
    public int MaxEntries { get; set; } = 100_000;
}

/// <summary>What a cached entry depends on; a change to any row of its tables invalidates the whole scope.</summary>
public enum CacheScope
{
    /// <summary>OAuth apps, authorizations and access tokens.</summary>
    OAuth,
    ApiKeys,
    Users,
    Credentials,
    /// <summary>MCP servers and their tool mappings.</summary>
    McpServers,
    /// <summary>The authorization server's signing and encryption keys (a rotation).</summary>
    ServerKeys,
}

/// <summary>
/// A set of scopes as the bits of an int, as announcers collect them (<c>Interlocked.Or</c>),
/// take them (<c>Interlocked.Exchange</c>) and send them.
/// </summary>
public static class CacheScopeBits
{
    public static int Of(CacheScope scope) => 1 << (int)scope;

    public static IEnumerable<CacheScope> In(int bits) => Enum.GetValues<CacheScope>().Where(scope => (bits & Of(scope)) != 0);
}

/// <summary>
/// Bulk updates that only stamp a "last used" time (at most once a minute per key or
/// credential). No cached answer holds that time, so they invalidate nothing and are not
/// announced to other nodes; otherwise every node's caches would be emptied all the time.
/// </summary>
public static class LastUseStamp
{
    // Marked on the context rather than recognised in the SQL: EF Core 10 drops query tags from
    // ExecuteUpdate (dotnet/efcore#36908), and its SQL layout is not ours to rely on.
    public static async Task StampAsync(LatchkeyDbContext db, Func<Task<int>> update)
    {
        db.OnlyStampingLastUse = true;
        try
        {
            await update();
        }
        finally
        {
            db.OnlyStampingLastUse = false;
        }
    }
}

/// <summary>Tells other nodes, or on SQLite a running server, that a scope changed here (<see cref="ClusterLink"/> on PostgreSQL, <see cref="SqliteChangeFeed"/> on SQLite).</summary>
public interface ICacheAnnouncer
{
    void Announce(CacheScope scope);
}

/// <summary>
/// Node-local revision counters, one per <see cref="CacheScope"/>. A reader notes the revision
/// before it reads the database and stores its entry under it; every committed change to the
/// scope's tables moves the revision on, so no entry read before a revocation is served after it.
/// </summary>
public sealed class CacheRevisions
{
    private readonly long[] _revisions = new long[Enum.GetValues<CacheScope>().Length];
    private volatile bool _trusted = true;

    public long Current(CacheScope scope) => Volatile.Read(ref _revisions[(int)scope]);

    /// <summary>
    /// Whether cached entries may be used: false while a node of several cannot hear the others'
    /// changes (its link to PostgreSQL is down), so that every check reads the database.
    /// </summary>
    public bool Trusted
    {
        get => _trusted;
        set => _trusted = value;
    }

    /// <summary>Raised after a scope's revision moved on (here or on another node), for holders of state other than snapshots.</summary>
    public event Action<CacheScope>? Invalidated;

    public void Invalidate(CacheScope scope)
    {
        Interlocked.Increment(ref _revisions[(int)scope]);
        Invalidated?.Invoke(scope);
    }

    public void InvalidateAll()
    {
        foreach (var scope in Enum.GetValues<CacheScope>())
        {
            Invalidate(scope);
        }
    }
}

/// <summary>
/// A read-through cache of immutable snapshots for one scope. Entries are used only while their
/// scope's revision is unchanged and they are younger than <see cref="CachingOptions.MaxAgeSeconds"/>.
/// </summary>
public sealed class SnapshotCache<TValue>(CacheRevisions revisions, CacheScope scope, IOptions<CachingOptions> options) where TValue : class
{
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly long _maxAgeMilliseconds = options.Value.MaxAgeSeconds * 1000L;
    private readonly bool _enabled = options.Value.Enabled && options.Value.MaxAgeSeconds > 0;
    private readonly int _maxEntries = options.Value.MaxEntries;

    private sealed record Entry(TValue Value, long Revision, long CachedAt);

    /// <summary>Note this before reading the database, and pass it to <see cref="Set"/>.</summary>
    public long Revision => revisions.Current(scope);

    public bool TryGet(string key, out TValue value)
    {
        if (_enabled && revisions.Trusted && _entries.TryGetValue(key, out var entry)
            && entry.Revision == revisions.Current(scope)
            && Environment.TickCount64 - entry.CachedAt < _maxAgeMilliseconds)
        {
            value = entry.Value;
            return true;
        }
        value = null!;
        return false;
    }

    /// <summary>
    /// The cached value, or what <paramref name="load"/> reads from the database, kept when it is
    /// not null. The revision is noted before the read, so a value read before a change is never
    /// kept after it.
    /// </summary>
    public async ValueTask<TValue?> GetOrLoadAsync<TState>(string key, TState state, Func<TState, CancellationToken, Task<TValue?>> load, CancellationToken cancellationToken)
    {
        if (TryGet(key, out var cached))
        {
            return cached;
        }
        var revision = Revision;
        var loaded = await load(state, cancellationToken);
        if (loaded is not null)
        {
            Set(key, loaded, revision);
        }
        return loaded;
    }

    public void Set(string key, TValue value, long revision)
    {
        if (!_enabled || !revisions.Trusted || revision != revisions.Current(scope))
        {
            return;
        }
        if (_entries.Count >= _maxEntries)
        {
            _entries.Clear();
        }
        _entries[key] = new Entry(value, revision, Environment.TickCount64);
    }
}

/// <summary>
/// Moves cache revisions on when rows that cached answers depend on change: tracked saves,
/// bulk updates and deletes, after their transaction commits. Token and authorization rows that
/// stay <c>valid</c> (a token being issued) change nothing a cache holds and are ignored.
/// </summary>
internal sealed class CacheInvalidationInterceptor(CacheRevisions revisions, ICacheAnnouncer announcer)
    : ISaveChangesInterceptor, IDbCommandInterceptor, IDbTransactionInterceptor
{
    private const string ValidStatus = "valid";

    private static readonly (string Table, CacheScope Scope)[] Tables =
    [
        ("OpenIddictTokens", CacheScope.OAuth),
        ("OpenIddictAuthorizations", CacheScope.OAuth),
        ("OpenIddictApplications", CacheScope.OAuth),
        ("api_keys", CacheScope.ApiKeys),
        ("AspNetUsers", CacheScope.Users),
        ("broker_credentials", CacheScope.Credentials),
        ("mcp_servers", CacheScope.McpServers),
        ("mcp_tool_mappings", CacheScope.McpServers),
        ("server_keys", CacheScope.ServerKeys),
    ];

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
            // New rows change no cached answer, except new server keys (a rotation), which every node must load.
            if ((entry.State is EntityState.Modified or EntityState.Deleted || entry is { State: EntityState.Added, Entity: ServerKey })
                && ScopeOf(entry) is { } scope)
            {
                Pending(context).Add(scope);
            }
        }
    }

    private static CacheScope? ScopeOf(EntityEntry entry) => entry.Entity switch
    {
        // Issuing a token updates its row while it stays valid; only a change of status matters.
        OAuthToken token when entry.State == EntityState.Modified && token.Status == ValidStatus => null,
        OAuthAuthorization authorization when entry.State == EntityState.Modified && authorization.Status == ValidStatus => null,
        OAuthToken or OAuthAuthorization or OAuthApplication => CacheScope.OAuth,
        ApiKey => CacheScope.ApiKeys,
        LatchkeyUser => CacheScope.Users,
        Credential => CacheScope.Credentials,
        Features.Mcp.McpServer or Features.Mcp.McpToolMapping => CacheScope.McpServers,
        ServerKey => CacheScope.ServerKeys,
        _ => null,
    };

    private void Bulk(DbCommand command, CommandExecutedEventData eventData)
    {
        if (eventData.CommandSource is not (CommandSource.ExecuteUpdate or CommandSource.ExecuteDelete or CommandSource.ExecuteSqlRaw))
        {
            return;
        }
        if (eventData.Context is LatchkeyDbContext { OnlyStampingLastUse: true })
        {
            return;
        }
        foreach (var (table, scope) in Tables)
        {
            if (command.CommandText.Contains(table, StringComparison.OrdinalIgnoreCase))
            {
                if (eventData.Context is { } context && context.Database.CurrentTransaction is not null)
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

/// <summary>
/// When a "last used" time was last written, per id, on this node: hot paths write it at most
/// once per resolution instead of on every use.
/// </summary>
public sealed class UsageStamps
{
    private readonly ConcurrentDictionary<string, long> _written = new(StringComparer.Ordinal);

    public bool ShouldRecord(string id, DateTimeOffset now, TimeSpan resolution)
    {
        var ticks = now.UtcTicks;
        while (true)
        {
            if (!_written.TryGetValue(id, out var last))
            {
                if (_written.TryAdd(id, ticks))
                {
                    return true;
                }
                continue;
            }
            if (ticks - last < resolution.Ticks)
            {
                return false;
            }
            // One request of many wins the write.
            if (_written.TryUpdate(id, ticks, last))
            {
                return true;
            }
        }
    }
}

public static class CachingSetup
{
    /// <summary>A <see cref="SnapshotCache{TValue}"/> singleton for <paramref name="scope"/>.</summary>
    public static IServiceCollection AddSnapshotCache<TValue>(this IServiceCollection services, CacheScope scope) where TValue : class =>
        services.AddSingleton(provider => new SnapshotCache<TValue>(
            provider.GetRequiredService<CacheRevisions>(), scope, provider.GetRequiredService<IOptions<CachingOptions>>()));
}

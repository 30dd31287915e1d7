using System.Collections.Concurrent;
using System.ComponentModel.DataAnnotations;
using Latchkey.Storage;
using Microsoft.Extensions.Options;

namespace Latchkey.Cluster;

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
    /// <summary>Settings changed at run time (<c>/admin/settings</c>).</summary>
    Settings,
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
        db.ChangesNothingCached = true;
        try
        {
            await update();
        }
        finally
        {
            db.ChangesNothingCached = false;
        }
    }
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

using Latchkey.Cluster;
using Microsoft.Extensions.Options;

namespace Latchkey.Tests.Caching;

public sealed class SnapshotCacheTests
{
    private static SnapshotCache<string> Cache(CacheRevisions revisions, int maxAgeSeconds = 10, int maxEntries = 100) =>
        new(revisions, CacheScope.ApiKeys, Options.Create(new CachingOptions { MaxAgeSeconds = maxAgeSeconds, MaxEntries = maxEntries }));

    [Fact]
    public void An_entry_is_served_until_its_scope_changes()
    {
        var revisions = new CacheRevisions();
        var cache = Cache(revisions);
        cache.Set("k", "v", cache.Revision);
        Assert.True(cache.TryGet("k", out var value));
        Assert.Equal("v", value);

        revisions.Invalidate(CacheScope.Users);
        Assert.True(cache.TryGet("k", out _));

        revisions.Invalidate(CacheScope.ApiKeys);
        Assert.False(cache.TryGet("k", out _));
    }

    [Fact]
    public void An_answer_read_before_a_change_is_not_stored_after_it()
    {
        var revisions = new CacheRevisions();
        var cache = Cache(revisions);
        var before = cache.Revision;
        // The database is read here; meanwhile another request revokes the key.
        revisions.Invalidate(CacheScope.ApiKeys);
        cache.Set("k", "read before the revocation", before);

        Assert.False(cache.TryGet("k", out _));
    }

    [Fact]
    public void A_zero_maximum_age_turns_caching_off_and_a_full_cache_starts_over()
    {
        var off = Cache(new CacheRevisions(), maxAgeSeconds: 0);
        off.Set("k", "v", off.Revision);
        Assert.False(off.TryGet("k", out _));

        var small = Cache(new CacheRevisions(), maxEntries: 100);
        for (var i = 0; i < 100; i++)
        {
            small.Set($"k{i}", "v", small.Revision);
        }
        small.Set("last", "v", small.Revision);
        Assert.True(small.TryGet("last", out _));
        Assert.False(small.TryGet("k0", out _));
    }

    [Fact]
    public void Last_used_stamps_are_written_once_per_resolution()
    {
        var stamps = new UsageStamps();
        var now = DateTimeOffset.UtcNow;
        Assert.True(stamps.ShouldRecord("key_1", now, TimeSpan.FromMinutes(1)));
        Assert.False(stamps.ShouldRecord("key_1", now.AddSeconds(30), TimeSpan.FromMinutes(1)));
        Assert.True(stamps.ShouldRecord("key_2", now.AddSeconds(30), TimeSpan.FromMinutes(1)));
        Assert.True(stamps.ShouldRecord("key_1", now.AddMinutes(1), TimeSpan.FromMinutes(1)));
    }
}

using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using Latchkey.Storage;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.SecurityEvents;

/// <summary>What an owner asks for: some types (none: all), a time window, both ends optional.</summary>
public sealed record SecurityEventFilter(IReadOnlyList<string> Types, DateTimeOffset? Since, DateTimeOffset? Until);

/// <summary>
/// Where a page ended: the occurred-at and id of its last (oldest) event. Opaque to callers;
/// a keyset cursor, so paging stays cheap however deep it goes.
/// </summary>
public readonly record struct SecurityEventCursor(DateTimeOffset OccurredAt, long Id)
{
    public string Encode() =>
        WebEncoders.Base64UrlEncode(Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{OccurredAt.UtcTicks}.{Id}")));

    public static bool TryDecode(string? value, out SecurityEventCursor cursor)
    {
        cursor = default;
        if (string.IsNullOrEmpty(value) || value.Length > 64)
        {
            return false;
        }
        try
        {
            var parts = Encoding.ASCII.GetString(WebEncoders.Base64UrlDecode(value)).Split('.');
            if (parts.Length == 2
                && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)
                && ticks <= DateTimeOffset.MaxValue.UtcTicks
                && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var id))
            {
                cursor = new SecurityEventCursor(new DateTimeOffset(ticks, TimeSpan.Zero), id);
                return true;
            }
        }
        catch (FormatException)
        {
        }
        return false;
    }
}

/// <summary>Reading an account's security events (pages and whole exports) and pruning old ones.</summary>
public sealed partial class SecurityEventHistory(LatchkeyDbContext db, IOptions<SecurityEventOptions> options, TimeProvider time, ILogger<SecurityEventHistory> logger)
    : Operations.ICleanupTask
{
    public const int DefaultPageSize = 50;
    public const int MaxPageSize = 500;
    private const int ExportBatchSize = 1000;
    private const int PruneBatchSize = 10_000;

    /// <summary>One page, newest first, and the cursor of the next one (null on the last page). No account: every account's (the admin pages).</summary>
    public async Task<(List<SecurityEvent> Events, SecurityEventCursor? Next)> PageAsync(
        string? accountId, SecurityEventFilter filter, int limit, SecurityEventCursor? after, CancellationToken cancellationToken)
    {
        var rows = await Query(accountId, filter, after).Take(limit + 1).ToListAsync(cancellationToken);
        if (rows.Count <= limit)
        {
            return (rows, null);
        }
        rows.RemoveAt(limit);
        var last = rows[^1];
        return (rows, new SecurityEventCursor(last.OccurredAt, last.Id));
    }

    /// <summary>
    /// Every event within the filter, newest first, read in batches so that neither memory nor a
    /// database read stays open for the length of a slow download.
    /// </summary>
    public async IAsyncEnumerable<SecurityEvent> AllAsync(string accountId, SecurityEventFilter filter, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        SecurityEventCursor? after = null;
        while (true)
        {
            var (rows, next) = await PageAsync(accountId, filter, ExportBatchSize, after, cancellationToken);
            foreach (var row in rows)
            {
                yield return row;
            }
            if (next is null)
            {
                yield break;
            }
            after = next;
        }
    }

    private IQueryable<SecurityEvent> Query(string? accountId, SecurityEventFilter filter, SecurityEventCursor? after)
    {
        var query = db.Set<SecurityEvent>().AsNoTracking();
        if (accountId is not null)
        {
            query = query.Where(e => e.AccountId == accountId);
        }
        if (filter.Types.Count == 1)
        {
            var type = filter.Types[0];
            query = query.Where(e => e.Type == type);
        }
        else if (filter.Types.Count > 1)
        {
            var types = filter.Types;
            query = query.Where(e => types.Contains(e.Type));
        }
        // Instants are compared in UTC: SQLite stores them as integers that sort only at one offset.
        if (filter.Since?.ToUniversalTime() is { } since)
        {
            query = query.Where(e => e.OccurredAt >= since);
        }
        if (filter.Until?.ToUniversalTime() is { } until)
        {
            query = query.Where(e => e.OccurredAt < until);
        }
        if (after is { } cursor)
        {
            var at = cursor.OccurredAt;
            var id = cursor.Id;
            query = query.Where(e => e.OccurredAt < at || (e.OccurredAt == at && e.Id < id));
        }
        return query.OrderByDescending(e => e.OccurredAt).ThenByDescending(e => e.Id);
    }

    /// <summary>Removes events older than <c>SecurityEvents:RetentionDays</c>, in short batches.</summary>
    public async Task<long> PruneAsync(CancellationToken cancellationToken)
    {
        var cutoff = time.GetUtcNow().AddDays(-options.Value.RetentionDays);
        long total = 0;
        int deleted;
        do
        {
            deleted = await db.Set<SecurityEvent>()
                .Where(e => e.OccurredAt < cutoff)
                .OrderBy(e => e.OccurredAt)
                .Take(PruneBatchSize)
                .ExecuteDeleteAsync(cancellationToken);
            total += deleted;
        }
        while (deleted == PruneBatchSize);
        LogPruned(logger, total, options.Value.RetentionDays);
        return total;
    }

    async Task<IReadOnlyList<Operations.CleanupCount>> Operations.ICleanupTask.RunAsync(CancellationToken cancellationToken) =>
        [new("security events past their retention", await PruneAsync(cancellationToken))];

    [LoggerMessage(Level = LogLevel.Information, Message = "Clean-up removed {Count} security events older than {RetentionDays} days")]
    private static partial void LogPruned(ILogger logger, long count, int retentionDays);
}

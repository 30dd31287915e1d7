using Latchkey.Features.AuthorizationServer.Stores;
using Latchkey.Features.Operations;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;

namespace Latchkey.Features.AuthorizationServer.Tokens;

/// <summary>
/// Removes expired and revoked tokens and codes, then authorizations left without tokens
/// (OpenIddict's pruning, which deletes in batches so the token endpoint is never blocked for long).
/// </summary>
public sealed class TokenCleanup(
    LatchkeyDbContext db, IOpenIddictTokenManager tokens, IOpenIddictAuthorizationManager authorizations, TimeProvider time) : ICleanupTask
{
    /// <summary>Rows per delete statement: short enough that token writes wait only briefly between batches.</summary>
    public const int BatchSize = 10_000;

    private static readonly TimeSpan MaxBatchPause = TimeSpan.FromSeconds(1);

    /// <summary>Entries younger than this are kept even when invalid, so recent reuse can still be detected and audited.</summary>
    public static readonly TimeSpan MinimumAge = TimeSpan.FromMinutes(30);

    public async Task<IReadOnlyList<CleanupCount>> RunAsync(CancellationToken cancellationToken)
    {
        var threshold = time.GetUtcNow() - MinimumAge;
        var prunedTokens = await PruneExpiredTokensAsync(threshold, cancellationToken);
        // Then OpenIddict's own pruning for the rest (revoked, redeemed, of revoked grants). It
        // deletes in batches of 1,000 and stops after 1,000 batches; go on until nothing is left.
        long pruned;
        do
        {
            pruned = await tokens.PruneAsync(threshold, cancellationToken);
            prunedTokens += pruned;
        }
        while (pruned > 0);
        var prunedAuthorizations = await authorizations.PruneAsync(threshold, cancellationToken);
        return [new("tokens", prunedTokens), new("authorizations", prunedAuthorizations)];
    }

    /// <summary>
    /// Expired tokens first, found through the expiration-date index in short batches: OpenIddict's
    /// pruning orders by id and re-reads the live rows at every batch, which on a table of a
    /// million expired tokens takes minutes.
    /// </summary>
    private async Task<long> PruneExpiredTokensAsync(DateTimeOffset threshold, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var createdBefore = threshold.UtcDateTime;
        long total = 0;
        int deleted;
        var sqlite = db.Database.IsSqlite();
        var postgresDelete = sqlite ? null : PostgresBatchDelete();
        await db.Database.OpenConnectionAsync(cancellationToken);
        try
        {
            if (sqlite)
            {
                // Deletes touch index pages all over the file; a bigger page cache for this one
                // connection saves re-reading them at every batch (minutes on a million rows).
                await db.Database.ExecuteSqlRawAsync("PRAGMA cache_size=-131072;", cancellationToken);
            }
            do
            {
                var started = time.GetTimestamp();
                deleted = sqlite
                    ? await db.OAuthTokens
                        .Where(t => t.ExpirationDate < now && t.CreationDate < createdBefore)
                        .OrderBy(t => t.ExpirationDate)
                        .Take(BatchSize)
                        .ExecuteDeleteAsync(cancellationToken)
                    : await db.Database.ExecuteSqlRawAsync(postgresDelete!, [now, createdBefore], cancellationToken);
                total += deleted;
                if (deleted == BatchSize)
                {
                    // Leave the database to the token endpoint between batches, so that it keeps
                    // more than half its rate during a clean-up. SQLite has one write lock: leave
                    // it free a little longer than the batch held it. PostgreSQL's writers do not
                    // wait for each other, but its batches (by ctid) are fast enough to take the
                    // CPU from the endpoint on a small machine: as long a pause as the batch took.
                    var pause = time.GetElapsedTime(started) * (sqlite ? 1.5 : 1.0);
                    await Task.Delay(pause < MaxBatchPause ? pause : MaxBatchPause, time, cancellationToken);
                }
            }
            while (deleted == BatchSize);
        }
        finally
        {
            if (sqlite)
            {
                // The connection goes back to the pool: give the memory back too.
                await db.Database.ExecuteSqlRawAsync("PRAGMA cache_size=-2000;", CancellationToken.None);
            }
            await db.Database.CloseConnectionAsync();
        }
        return total;
    }

    /// <summary>
    /// On PostgreSQL one batch finds its rows through the expiry index and deletes them by their
    /// physical address (ctid). EF Core's form deletes <c>WHERE Id IN (subquery)</c>, a primary-key
    /// probe per row on top of the index scan.
    /// </summary>
    private string PostgresBatchDelete()
    {
        var names = StoreNames.Of(db, typeof(OAuthToken));
        var (expiration, creation) = (names.Column(nameof(OAuthToken.ExpirationDate)), names.Column(nameof(OAuthToken.CreationDate)));
        return $"DELETE FROM {names.Table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {names.Table} " +
               $"WHERE {expiration} < {{0}} AND {creation} < {{1}} ORDER BY {expiration} LIMIT {BatchSize}))";
    }
}

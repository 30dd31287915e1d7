using Latchkey.Cluster;
using Latchkey.Features.Broker.Providers;
using Latchkey.Features.Operations;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Broker.Credentials;

/// <summary>
/// Refreshes, every <c>Broker:ProactiveRefreshSeconds</c>, the credentials whose tokens would
/// otherwise expire (within the read margin) before the next run, so that readers seldom wait
/// for a provider. Runs on the node that leads the jobs; a refresh still takes the credential's
/// row lock, so a reader refreshing the same credential on another node never causes a second
/// provider call.
/// </summary>
internal sealed partial class ProactiveRefresh(
    IServiceScopeFactory scopes, CredentialRefresher refresher, IOptions<BrokerOptions> options,
    IJobLeadership leadership, TimeProvider time, ILogger<ProactiveRefresh> logger)
    : LeaderJob(leadership, time, logger)
{
    /// <summary>Credentials per run, soonest to expire first; the rest wait for the next run (or their first reader).</summary>
    public const int BatchSize = 200;

    protected override TimeSpan Interval => TimeSpan.FromSeconds(options.Value.ProactiveRefreshSeconds);

    protected override string Name => "proactive refresh";

    protected override async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        var margin = TimeSpan.FromSeconds(options.Value.RefreshMarginSeconds) + Interval;
        var threshold = Time.GetUtcNow() + margin;
        List<string> due;
        await using (var scope = scopes.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<LatchkeyDbContext>();
            due = await db.BrokerCredentials.AsNoTracking()
                .Where(c => c.Status == CredentialStatus.Active && (c.RefreshTokenCiphertext != null || c.Kind == AuthTypes.ClientCredentials) && c.ExpiresAt != null && c.ExpiresAt <= threshold)
                .OrderBy(c => c.ExpiresAt)
                .Select(c => c.Id)
                .Take(BatchSize)
                .ToListAsync(cancellationToken);
        }
        var failed = 0;
        foreach (var id in due)
        {
            // Failures are recorded on the credential (and invalid_grant marks it needs_reauth, which
            // takes it out of this query); a transient one is tried again at the next run.
            try
            {
                var (_, error) = await refresher.RefreshAsync(id, force: false, cancellationToken, beyondMargin: Interval);
                failed += error is null ? 0 : 1;
            }
            catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // One credential's failure (its row lock held too long, a database error) does not end the run.
                failed++;
                LogFailed(Logger, id, exception.GetType().Name);
            }
        }
        if (due.Count > 0)
        {
            LogRefreshed(Logger, due.Count - failed, failed);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Proactive refresh of credential {CredentialId} failed ({Error})")]
    private static partial void LogFailed(ILogger logger, string credentialId, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Proactive refresh: {Refreshed} credentials refreshed, {Failed} failed")]
    private static partial void LogRefreshed(ILogger logger, int refreshed, int failed);
}

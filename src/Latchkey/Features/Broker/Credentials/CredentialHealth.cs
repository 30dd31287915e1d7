using Latchkey.Cluster;
using Latchkey.Common;
using Latchkey.Features.AgentApi;
using Latchkey.Features.Broker.Providers;
using Latchkey.Features.Operations;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Broker.Credentials;

/// <summary>
/// Tries a credential with its provider's test request, so that a broken connection is found (and
/// the app told, by the <c>credential.needs_reauth</c> webhook) before an agent needs it. A refusal
/// (401/403) of an OAuth credential gets one forced refresh and a second try first; a refusal that
/// stays marks the credential <c>needs_reauth</c>. A provider that is down changes nothing but the
/// recorded outcome.
/// </summary>
public sealed class CredentialHealth(LatchkeyDbContext db, CredentialService credentials, ProviderApi api, CredentialAudit audit, TimeProvider time)
{
    public async Task<Outcome<Credential>> CheckAsync(string accountId, string id, CancellationToken cancellationToken)
    {
        var (current, error) = await credentials.CurrentAsync(accountId, id, "health_check", cancellationToken);
        if (current is null)
        {
            if (error!.Status == StatusCodes.Status404NotFound)
            {
                return error;
            }
            // Already needing re-authorization, or expired: that is the finding.
            var found = await RecordAsync(id, error.Message, broken: false, cancellationToken);
            return found is null ? error : found;
        }
        if (current.Definition.TestRequest is null)
        {
            return AgentError.Conflict("no_test_request", "The credential's provider declares no test request, so there is nothing to check it with.");
        }
        var probe = await api.TestAsync(current.Definition, current.Token.Headers, cancellationToken);
        if (probe.Refused && current.Refreshable && (await credentials.RefreshAsync(accountId, id, cancellationToken)).Error is null
            && (await credentials.CurrentAsync(accountId, id, "health_check", cancellationToken)).Value is { } renewed)
        {
            probe = await api.TestAsync(current.Definition, renewed.Token.Headers, cancellationToken);
        }
        var recorded = await RecordAsync(id, probe.Works ? "ok" : probe.Message, probe.Refused, cancellationToken);
        return recorded is null ? AgentError.NotFound("credential", $"You have no credential {InputEcho.Quote(id)}.") : recorded;
    }

    private async Task<Credential?> RecordAsync(string id, string outcome, bool broken, CancellationToken cancellationToken)
    {
        var credential = await db.BrokerCredentials.FirstOrDefaultAsync(c => c.Id == id, cancellationToken);
        if (credential is null)
        {
            return null;
        }
        credential.LastCheckedAt = time.GetUtcNow();
        credential.LastCheckOutcome = outcome.Length > 300 ? outcome[..300] : outcome;
        var newlyBroken = broken && credential.Status == CredentialStatus.Active;
        if (newlyBroken)
        {
            credential.Status = CredentialStatus.NeedsReauth;
            credential.LastError = credential.LastCheckOutcome;
        }
        await db.SaveChangesAsync(cancellationToken);
        if (newlyBroken)
        {
            await audit.RecordChangeAsync(credential, "needs_reauth", "health check refused");
        }
        return credential;
    }
}

/// <summary>
/// Every <c>Broker:HealthCheckSeconds</c> on the node that leads the jobs: checks the active
/// credentials not checked within that time, whose providers have a test request, oldest first,
/// up to 200 a run.
/// </summary>
internal sealed partial class HealthCheckJob(IServiceScopeFactory scopes, IOptions<BrokerOptions> options, IJobLeadership leadership, TimeProvider time, ILogger<HealthCheckJob> logger)
    : LeaderJob(leadership, time, logger)
{
    public const int BatchSize = 200;

    protected override TimeSpan Interval => TimeSpan.FromSeconds(options.Value.HealthCheckSeconds);

    protected override string Name => "credential health check";

    /// <summary>One run now, whoever leads (tests, and an operator's command).</summary>
    internal Task RunNowAsync(CancellationToken cancellationToken) => RunOnceAsync(cancellationToken);

    protected override async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        var before = Time.GetUtcNow() - Interval;
        List<(string Id, string AccountId)> due;
        await using (var scope = scopes.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<LatchkeyDbContext>();
            // The test request lives in the provider's definition (JSON), so the filter on it runs here.
            var candidates = await db.BrokerCredentials.AsNoTracking().Include(c => c.Provider)
                .Where(c => c.Status == CredentialStatus.Active && (c.LastCheckedAt == null || c.LastCheckedAt < before))
                // Never checked first (PostgreSQL would sort nulls last), then the longest unchecked.
                .OrderBy(c => c.LastCheckedAt == null ? 0 : 1).ThenBy(c => c.LastCheckedAt).Take(BatchSize * 5).ToListAsync(cancellationToken);
            due = [.. candidates.Where(c => c.Provider?.Definition.TestRequest is not null).Take(BatchSize).Select(c => (c.Id, c.AccountId))];
            // Those that cannot be checked are stamped, so that they go to the back of the queue
            // instead of filling every run's candidates.
            var uncheckable = candidates.Where(c => c.Provider?.Definition.TestRequest is null).Select(c => c.Id).ToList();
            if (uncheckable.Count > 0)
            {
                var now = Time.GetUtcNow();
                await db.BrokerCredentials.Where(c => uncheckable.Contains(c.Id)).ExecuteUpdateAsync(s => s
                    .SetProperty(c => c.LastCheckedAt, now).SetProperty(c => c.LastCheckOutcome, "no test request"), cancellationToken);
            }
        }
        var broken = 0;
        foreach (var (id, accountId) in due)
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var (checkedCredential, _) = await scope.ServiceProvider.GetRequiredService<CredentialHealth>().CheckAsync(accountId, id, cancellationToken);
                broken += checkedCredential?.Status == CredentialStatus.NeedsReauth ? 1 : 0;
            }
            catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                LogFailed(Logger, id, exception.GetType().Name);
            }
        }
        if (due.Count > 0)
        {
            LogChecked(Logger, due.Count, broken);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Health check of credential {CredentialId} failed ({Error})")]
    private static partial void LogFailed(ILogger logger, string credentialId, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Credential health check: {Checked} checked, {Broken} need re-authorization")]
    private static partial void LogChecked(ILogger logger, int @checked, int broken);
}

using System.Threading.Channels;
using Latchkey.Storage;

namespace Latchkey.Features.Broker.Credentials;

/// <summary>
/// Records credential events off the request path: events are queued and written in batches by
/// a background loop (every half second), so reading a token costs no extra write.
/// </summary>
public sealed class CredentialAudit(IServiceScopeFactory scopes, TimeProvider time)
{
    private readonly Channel<CredentialAuditEvent> _queue = Channel.CreateUnbounded<CredentialAuditEvent>(new UnboundedChannelOptions { SingleReader = false });

    public void Record(string credentialId, string accountId, string action, string outcome = "ok") =>
        _queue.Writer.TryWrite(new CredentialAuditEvent { CredentialId = credentialId, AccountId = accountId, Action = action, Outcome = outcome, At = time.GetUtcNow() });

    /// <summary>Writes everything queued so far.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        var batch = new List<CredentialAuditEvent>();
        while (batch.Count < 1000 && _queue.Reader.TryRead(out var item))
        {
            batch.Add(item);
        }
        if (batch.Count == 0)
        {
            return;
        }
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LatchkeyDbContext>();
        db.BrokerCredentialAudit.AddRange(batch);
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch
        {
            foreach (var item in batch)
            {
                _queue.Writer.TryWrite(item);
            }
            throw;
        }
    }
}

internal sealed partial class CredentialAuditWriter(CredentialAudit audit, ILogger<CredentialAuditWriter> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(500));
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await audit.FlushAsync(stoppingToken);
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                LogFailed(logger, exception);
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        // Whatever is queued at shutdown is written before the process ends.
        try
        {
            await audit.FlushAsync(cancellationToken);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            LogFailed(logger, exception);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Writing credential audit events failed; they are retried with the next batch")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}

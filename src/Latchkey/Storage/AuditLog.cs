using System.Threading.Channels;

namespace Latchkey.Storage;

/// <summary>
/// Audit rows written off the request path: <see cref="Record"/> queues a row, and a background
/// loop (<see cref="AuditLogWriter{TEvent}"/>, every half second) inserts what is queued in
/// batches, so an audited hot path costs no extra write.
/// </summary>
public class AuditLog<TEvent>(IServiceScopeFactory scopes) where TEvent : class
{
    private const int BatchSize = 1000;
    private readonly Channel<TEvent> _queue = Channel.CreateUnbounded<TEvent>(new UnboundedChannelOptions { SingleReader = false });

    public void Record(TEvent item) => _queue.Writer.TryWrite(item);

    /// <summary>Writes everything queued so far; a failed batch goes back on the queue.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var batch = new List<TEvent>();
            while (batch.Count < BatchSize && _queue.Reader.TryRead(out var item))
            {
                batch.Add(item);
            }
            if (batch.Count == 0)
            {
                return;
            }
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<LatchkeyDbContext>();
            db.Set<TEvent>().AddRange(batch);
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
            if (batch.Count < BatchSize)
            {
                return;
            }
        }
    }
}

/// <summary>Flushes one <see cref="AuditLog{TEvent}"/> twice a second, and once more at shutdown.</summary>
internal sealed partial class AuditLogWriter<TEvent>(AuditLog<TEvent> audit, ILogger<AuditLogWriter<TEvent>> logger) : BackgroundService where TEvent : class
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(500));
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            await FlushAsync(stoppingToken);
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        // Whatever is queued at shutdown is written before the process ends.
        await FlushAsync(cancellationToken);
    }

    private async Task FlushAsync(CancellationToken cancellationToken)
    {
        try
        {
            await audit.FlushAsync(cancellationToken);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            LogFailed(logger, typeof(TEvent).Name, exception);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Writing {EventType} audit rows failed; they are retried with the next batch")]
    private static partial void LogFailed(ILogger logger, string eventType, Exception exception);
}

public static class AuditLogSetup
{
    /// <summary>Registers the queue for <typeparamref name="TAudit"/>'s rows and its background writer.</summary>
    public static IServiceCollection AddAuditLog<TAudit, TEvent>(this IServiceCollection services)
        where TAudit : AuditLog<TEvent> where TEvent : class
    {
        services.AddSingleton<TAudit>();
        services.AddSingleton<AuditLog<TEvent>>(provider => provider.GetRequiredService<TAudit>());
        services.AddHostedService<AuditLogWriter<TEvent>>();
        return services;
    }
}

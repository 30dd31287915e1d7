using System.Threading.Channels;

namespace Latchkey.Storage;

/// <summary>
/// Audit rows written off the request path: <see cref="Record"/> queues a row, and a background
/// loop (<see cref="AuditLogWriter{TEvent}"/>, every half second) inserts what is queued in
/// batches, so an audited hot path costs no extra write.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA1001",
    Justification = "The flush semaphore's wait handle is never asked for, so there is nothing to dispose; the log lives as long as the host.")]
public class AuditLog<TEvent>(IServiceScopeFactory scopes) : IQueuedAuditLog where TEvent : class
{
    private const int BatchSize = 1000;
    // After this many failed attempts in a row (not counting an unreachable database), rows are
    // written one at a time and a row that still fails is dropped (and counted), so that one
    // unwritable row cannot hold back the rest for ever.
    private const int AttemptsBeforeSingleRows = 5;
    private int _failedAttempts;
    private readonly SemaphoreSlim _flushing = new(1, 1);
    private readonly Channel<TEvent> _queue = Channel.CreateUnbounded<TEvent>(new UnboundedChannelOptions { SingleReader = false });

    public void Record(TEvent item) => _queue.Writer.TryWrite(item);

    public int Queued => _queue.Reader.Count;

    public string Name => typeof(TEvent).Name;

    private async Task WriteAsync(IReadOnlyList<TEvent> rows, CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LatchkeyDbContext>();
        await RowInserter.InsertAsync(db, rows, cancellationToken);
    }

    private void Requeue(IEnumerable<TEvent> rows)
    {
        foreach (var row in rows)
        {
            _queue.Writer.TryWrite(row);
        }
    }

    /// <summary>
    /// Writes everything queued so far; a failed batch goes back on the queue. One flush at a
    /// time: a caller that comes while the writer holds a batch waits for that batch's commit, so
    /// everything recorded before the call is in the database when it returns.
    /// </summary>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        await _flushing.WaitAsync(cancellationToken);
        try
        {
            await FlushQueuedAsync(cancellationToken);
        }
        finally
        {
            _flushing.Release();
        }
    }

    private async Task FlushQueuedAsync(CancellationToken cancellationToken)
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
            if (_failedAttempts >= AttemptsBeforeSingleRows)
            {
                _failedAttempts = 0;
                var dropped = 0;
                for (var index = 0; index < batch.Count; index++)
                {
                    try
                    {
                        await WriteAsync([batch[index]], cancellationToken);
                    }
                    catch (Exception exception) when (DatabaseUnavailable.Is(exception) || exception is OperationCanceledException)
                    {
                        // Not this row's fault: keep it and the rest for when the database is back (or for the shutdown flush).
                        Requeue(batch.Skip(index));
                        throw;
                    }
                    catch
                    {
                        dropped++;
                    }
                }
                if (dropped > 0)
                {
                    throw new AuditRowsDroppedException(typeof(TEvent).Name, dropped);
                }
                continue;
            }
            try
            {
                await WriteAsync(batch, cancellationToken);
                _failedAttempts = 0;
            }
            catch (Exception exception)
            {
                // An unreachable database is waited out, however long: the rows are not at fault.
                if (!DatabaseUnavailable.Is(exception))
                {
                    _failedAttempts++;
                }
                Requeue(batch);
                throw;
            }
            if (batch.Count < BatchSize)
            {
                return;
            }
        }
    }
}

/// <summary>Any audit log, for a host that never starts its writers (the command line) to write what was queued.</summary>
public interface IQueuedAuditLog
{
    Task FlushAsync(CancellationToken cancellationToken = default);

    /// <summary>Rows queued and not yet written (the <c>latchkey.audit.queue.depth</c> gauge).</summary>
    int Queued { get; }

    /// <summary>What the rows are, for the gauge's <c>log</c> tag.</summary>
    string Name { get; }
}

/// <summary>Rows that could not be written even one at a time (they are counted, never shown: they may quote values).</summary>
public sealed class AuditRowsDroppedException(string eventType, int count)
    : Exception($"{count} {eventType} audit row(s) could not be written even one at a time and were dropped.");

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
        services.AddSingleton<IQueuedAuditLog>(provider => provider.GetRequiredService<TAudit>());
        services.AddHostedService<AuditLogWriter<TEvent>>();
        return services;
    }
}

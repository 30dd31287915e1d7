using Latchkey.Cluster;

namespace Latchkey.Features.Operations;

/// <summary>
/// A background job that runs every <see cref="Interval"/> on the node that leads the jobs
/// (<see cref="IJobLeadership"/>: the one node on SQLite, the holder of the leader lock on
/// PostgreSQL), so several nodes never run it at once.
/// </summary>
public abstract partial class LeaderJob(IJobLeadership leadership, TimeProvider time, ILogger logger) : BackgroundService
{
    /// <summary>Zero turns the job off.</summary>
    protected abstract TimeSpan Interval { get; }

    protected abstract string Name { get; }

    protected abstract Task RunOnceAsync(CancellationToken cancellationToken);

    protected TimeProvider Time => time;

    protected ILogger Logger => logger;

    /// <summary>Runs this node has completed, for diagnostics and tests.</summary>
    public int CompletedRuns => Volatile.Read(ref _completedRuns);

    private int _completedRuns;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (Interval <= TimeSpan.Zero)
        {
            return;
        }
        using var timer = new PeriodicTimer(Interval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            if (!leadership.IsLeader)
            {
                continue;
            }
            try
            {
                await RunOnceAsync(stoppingToken);
                Interlocked.Increment(ref _completedRuns);
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                // A failed run (database briefly unavailable) is tried again at the next interval.
                LogFailed(logger, Name, exception.GetType().Name, exception.Message);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The {Job} job failed ({Error}: {Message}); it runs again at the next interval")]
    private static partial void LogFailed(ILogger logger, string job, string error, string message);
}

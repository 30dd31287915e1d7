using System.ComponentModel.DataAnnotations;
using Latchkey.Cluster;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Operations;

/// <summary>The background clean-up of expired and finished rows. Bound from <c>Cleanup</c>.</summary>
public sealed class CleanupOptions
{
    public const string SectionName = "Cleanup";

    [Range(0.01, 24 * 7)]
    public double IntervalHours { get; set; } = 1;

    /// <summary>Turn off on all but one node if you prefer to run <c>latchkey cleanup</c> from a scheduler.</summary>
    public bool Enabled { get; set; } = true;
}

/// <summary>How many rows of one kind a clean-up removed, e.g. ("tokens", 120).</summary>
public readonly record struct CleanupCount(string What, long Removed);

/// <summary>
/// Removes one feature's rows that are no longer needed (expired tokens, finished flows, events past
/// their retention). Each feature registers its own with <see cref="CleanupSetup.AddCleanupTask{T}"/>;
/// <see cref="Cleanup"/> runs them all, on the leading node every <c>Cleanup:IntervalHours</c> and
/// on demand with <c>latchkey cleanup</c>.
/// </summary>
public interface ICleanupTask
{
    Task<IReadOnlyList<CleanupCount>> RunAsync(CancellationToken cancellationToken);
}

/// <summary>Runs every registered <see cref="ICleanupTask"/> once, in the order they were registered.</summary>
public sealed partial class Cleanup(IEnumerable<ICleanupTask> tasks, ILogger<Cleanup> logger)
{
    public async Task<IReadOnlyList<CleanupCount>> RunAsync(CancellationToken cancellationToken)
    {
        var counts = new List<CleanupCount>();
        foreach (var task in tasks)
        {
            counts.AddRange(await task.RunAsync(cancellationToken));
        }
        var removed = Describe(counts);
        LogRemoved(logger, removed);
        return counts;
    }

    /// <summary>"120 tokens, 3 authorizations and 0 broker flows".</summary>
    public static string Describe(IReadOnlyList<CleanupCount> counts)
    {
        var parts = counts.Select(c => $"{c.Removed} {c.What}").ToList();
        return parts.Count switch
        {
            0 => "nothing",
            1 => parts[0],
            _ => string.Join(", ", parts[..^1]) + " and " + parts[^1],
        };
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Clean-up removed {Counts}")]
    private static partial void LogRemoved(ILogger logger, string counts);
}

/// <summary>Runs <see cref="Cleanup"/> every <c>Cleanup:IntervalHours</c> on the node that leads the jobs.</summary>
internal sealed class CleanupJob(IServiceScopeFactory scopes, IOptions<CleanupOptions> options, IJobLeadership leadership, TimeProvider time, ILogger<CleanupJob> logger)
    : LeaderJob(leadership, time, logger)
{
    protected override TimeSpan Interval => options.Value.Enabled ? TimeSpan.FromHours(options.Value.IntervalHours) : TimeSpan.Zero;

    protected override string Name => "clean-up";

    protected override async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<Cleanup>().RunAsync(cancellationToken);
    }
}

public static class CleanupSetup
{
    /// <summary>The clean-up runner and its background job; features add their tasks.</summary>
    public static IServiceCollection AddCleanup(this IServiceCollection services)
    {
        services.AddOptions<CleanupOptions>().BindConfiguration(CleanupOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddScoped<Cleanup>();
        services.AddHostedService<CleanupJob>();
        return services;
    }

    /// <summary>Adds a feature's clean-up task (scoped: it may use the database context).</summary>
    public static IServiceCollection AddCleanupTask<T>(this IServiceCollection services) where T : class, ICleanupTask =>
        services.AddScoped<ICleanupTask, T>();
}

using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;

namespace Latchkey.Features.AuthorizationServer;

/// <summary>
/// Removes expired and revoked tokens and codes, then authorizations left without tokens
/// (OpenIddict's pruning, which deletes in batches so the token endpoint is never blocked for long).
/// </summary>
public sealed partial class TokenCleanup(IOpenIddictTokenManager tokens, IOpenIddictAuthorizationManager authorizations, Broker.Flows.FlowService flows, TimeProvider time, ILogger<TokenCleanup> logger)
{
    /// <summary>Entries younger than this are kept even when invalid, so recent reuse can still be detected and audited.</summary>
    public static readonly TimeSpan MinimumAge = TimeSpan.FromMinutes(30);

    public async Task<(long Tokens, long Authorizations, int Flows)> RunAsync(CancellationToken cancellationToken)
    {
        var threshold = time.GetUtcNow() - MinimumAge;
        // OpenIddict prunes in batches of 1,000 and stops after 1,000 batches; go on until nothing is left.
        long prunedTokens = 0, pruned;
        do
        {
            pruned = await tokens.PruneAsync(threshold, cancellationToken);
            prunedTokens += pruned;
        }
        while (pruned > 0);
        var prunedAuthorizations = await authorizations.PruneAsync(threshold, cancellationToken);
        // The credential broker's flow states, a day after they expired.
        var prunedFlows = await flows.PruneAsync(cancellationToken);
        LogPruned(logger, prunedTokens, prunedAuthorizations, prunedFlows);
        return (prunedTokens, prunedAuthorizations, prunedFlows);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Clean-up removed {Tokens} tokens, {Authorizations} authorizations and {Flows} broker flows")]
    private static partial void LogPruned(ILogger logger, long tokens, long authorizations, int flows);
}

/// <summary>Runs <see cref="TokenCleanup"/> every <c>Cleanup:IntervalHours</c>.</summary>
internal sealed partial class TokenCleanupService(IServiceScopeFactory scopes, IOptions<CleanupOptions> options, TimeProvider time, ILogger<TokenCleanupService> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.Enabled)
        {
            return;
        }
        using var timer = new PeriodicTimer(TimeSpan.FromHours(options.Value.IntervalHours), time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                await scope.ServiceProvider.GetRequiredService<TokenCleanup>().RunAsync(stoppingToken);
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                // A failed run (database briefly unavailable) is retried at the next interval.
                LogFailed(logger, exception);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Token clean-up failed; it will run again at the next interval")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}

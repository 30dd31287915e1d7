using Latchkey.Features.Operations;

namespace Latchkey.Features.Broker.Flows;

/// <summary>The clean-up's share for the broker: flow states a day after they ended or expired.</summary>
internal sealed class FlowCleanup(FlowService flows) : ICleanupTask
{
    public async Task<IReadOnlyList<CleanupCount>> RunAsync(CancellationToken cancellationToken) =>
        [new("finished broker flows", await flows.PruneAsync(cancellationToken))];
}

using Latchkey.Features.Operations;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Features.Mcp.Approvals;

/// <summary>
/// The clean-up's share for approvals: held calls asked more than <see cref="KeptDays"/> days ago
/// whose approval no longer lets anything through. The approvals page shows the latest; the
/// tool-call audit and the security log keep the decisions.
/// </summary>
internal sealed class ApprovalCleanup(LatchkeyDbContext db, TimeProvider time) : ICleanupTask
{
    public const int KeptDays = 30;

    public async Task<IReadOnlyList<CleanupCount>> RunAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var threshold = now.AddDays(-KeptDays);
        var removed = await db.McpApprovals
            .Where(a => a.CreatedAt < threshold && (a.GrantExpiresAt == null || a.GrantExpiresAt < now))
            .ExecuteDeleteAsync(cancellationToken);
        return [new("tool-call approvals", removed)];
    }
}

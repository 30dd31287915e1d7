using Latchkey.Features.Operations;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Features.AccountSecurity;

/// <summary>One line of the profile's session list.</summary>
public sealed record SessionSummary(string Id, string Device, string? IpAddress, DateTimeOffset CreatedAt, DateTimeOffset LastSeenAt, bool Current);

/// <summary>The account's signed-in browsers: list them, end one, end all but this one.</summary>
public sealed class AccountSessions(LatchkeyDbContext db, TimeProvider time)
{
    public async Task<IReadOnlyList<SessionSummary>> ListAsync(string userId, HttpContext current, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var currentId = CurrentId(current);
        var sessions = await db.AccountSessions.AsNoTracking()
            .Where(s => s.UserId == userId && s.ExpiresAt > now)
            .OrderByDescending(s => s.LastSeenAt)
            .Select(s => new { s.Id, s.UserAgent, s.IpAddress, s.CreatedAt, s.LastSeenAt })
            .ToListAsync(cancellationToken);
        return [.. sessions
            .Select(s => new SessionSummary(s.Id, DeviceNames.Describe(s.UserAgent), s.IpAddress, s.CreatedAt, s.LastSeenAt, s.Id == currentId))
            .OrderByDescending(s => s.Current)];
    }

    /// <summary>Ends one of the account's sessions; false when there is no such session (of this account).</summary>
    public async Task<bool> EndAsync(string userId, string sessionId, CancellationToken cancellationToken) =>
        await db.AccountSessions.Where(s => s.UserId == userId && s.Id == sessionId).ExecuteDeleteAsync(cancellationToken) > 0;

    /// <summary>Ends every session of the account except the one making this request; returns how many ended.</summary>
    public Task<int> EndOthersAsync(string userId, HttpContext current, CancellationToken cancellationToken)
    {
        var currentId = CurrentId(current) ?? "";
        return db.AccountSessions.Where(s => s.UserId == userId && s.Id != currentId).ExecuteDeleteAsync(cancellationToken);
    }

    /// <summary>Ends every session of the account (an administrator's "sign out everywhere", a disabling).</summary>
    public Task<int> EndAllAsync(string userId, CancellationToken cancellationToken) =>
        db.AccountSessions.Where(s => s.UserId == userId).ExecuteDeleteAsync(cancellationToken);

    /// <summary>The row id of the session this request came with (its ticket names it).</summary>
    public static string? CurrentId(HttpContext context) => context.User.FindFirst(DatabaseTicketStore.SessionClaim)?.Value;

    /// <summary>Sessions past their expiry, removed by <c>latchkey cleanup</c> and the scheduled clean-up.</summary>
    public Task<int> PruneAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        return db.AccountSessions.Where(s => s.ExpiresAt < now).ExecuteDeleteAsync(cancellationToken);
    }
}

internal sealed class AccountSessionCleanup(AccountSessions sessions) : ICleanupTask
{
    public async Task<IReadOnlyList<CleanupCount>> RunAsync(CancellationToken cancellationToken) =>
        [new("expired browser sessions", await sessions.PruneAsync(cancellationToken))];
}

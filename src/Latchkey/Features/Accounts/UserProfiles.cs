using Latchkey.Cluster;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Features.Accounts;

/// <summary>
/// The public part of an account: what <c>/me</c> and consent pages show, whether an administrator
/// disabled it (<see cref="AccountDisabling"/>), which every API key of it then meets, and its
/// security stamp, which every browser session of it must still carry (<see cref="SessionValidation"/>).
/// </summary>
public sealed record UserProfile(string Id, string DisplayName, string? Email, string TimeZone, bool Disabled = false, string? SecurityStamp = null,
    bool TwoFactorEnabled = false, bool TwoFactorRequired = false);

/// <summary>Reads profiles by user id through a cache that any change to the users table invalidates.</summary>
public sealed class UserProfiles(LatchkeyDbContext db, SnapshotCache<UserProfile> cache)
{
    public ValueTask<UserProfile?> FindAsync(string userId, CancellationToken cancellationToken) =>
        cache.GetOrLoadAsync(userId, (db, userId), static (state, ct) => LoadAsync(state.db, state.userId, ct), cancellationToken);

    /// <summary>The profile as the database has it now, past the cache (for when the cache may lag another node's change).</summary>
    public Task<UserProfile?> ReadAsync(string userId, CancellationToken cancellationToken) => LoadAsync(db, userId, cancellationToken);

    private static async Task<UserProfile?> LoadAsync(LatchkeyDbContext db, string userId, CancellationToken cancellationToken)
    {
        // The lock-out is compared here, not in SQL: SQLite cannot compare DateTimeOffset values.
        var user = await db.Users.AsNoTracking()
            .Where(u => u.Id == userId)
            .Select(u => new { u.Id, u.DisplayName, u.Email, u.TimeZone, u.LockoutEnabled, u.LockoutEnd, u.SecurityStamp, u.TwoFactorEnabled, u.TwoFactorRequired })
            .FirstOrDefaultAsync(cancellationToken);
        return user is null
            ? null
            : new UserProfile(user.Id, user.DisplayName, user.Email, user.TimeZone, AccountDisabling.IsDisabled(user.LockoutEnabled, user.LockoutEnd), user.SecurityStamp,
                user.TwoFactorEnabled, user.TwoFactorRequired);
    }
}

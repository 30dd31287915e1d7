using Latchkey.Cluster;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Features.Accounts;

/// <summary>
/// The public part of an account: what <c>/me</c> and consent pages show, and whether an
/// administrator disabled it (<see cref="AccountDisabling"/>), which every API key of it then meets.
/// </summary>
public sealed record UserProfile(string Id, string DisplayName, string? Email, string TimeZone, bool Disabled = false);

/// <summary>Reads profiles by user id through a cache that any change to the users table invalidates.</summary>
public sealed class UserProfiles(LatchkeyDbContext db, SnapshotCache<UserProfile> cache)
{
    public ValueTask<UserProfile?> FindAsync(string userId, CancellationToken cancellationToken) =>
        cache.GetOrLoadAsync(userId, (db, userId), static async (state, ct) =>
        {
            // The lock-out is compared here, not in SQL: SQLite cannot compare DateTimeOffset values.
            var user = await state.db.Users.AsNoTracking()
                .Where(u => u.Id == state.userId)
                .Select(u => new { u.Id, u.DisplayName, u.Email, u.TimeZone, u.LockoutEnabled, u.LockoutEnd })
                .FirstOrDefaultAsync(ct);
            return user is null
                ? null
                : new UserProfile(user.Id, user.DisplayName, user.Email, user.TimeZone, AccountDisabling.IsDisabled(user.LockoutEnabled, user.LockoutEnd));
        }, cancellationToken);
}

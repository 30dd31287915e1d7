using Latchkey.Cluster;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Features.Accounts;

/// <summary>The public part of an account: what <c>/me</c> and consent pages show.</summary>
public sealed record UserProfile(string Id, string DisplayName, string? Email, string TimeZone);

/// <summary>Reads profiles by user id through a cache that any change to the users table invalidates.</summary>
public sealed class UserProfiles(LatchkeyDbContext db, SnapshotCache<UserProfile> cache)
{
    public ValueTask<UserProfile?> FindAsync(string userId, CancellationToken cancellationToken) =>
        cache.GetOrLoadAsync(userId, (db, userId), static (state, ct) => state.db.Users.AsNoTracking()
            .Where(u => u.Id == state.userId)
            .Select(u => new UserProfile(u.Id, u.DisplayName, u.Email, u.TimeZone))
            .FirstOrDefaultAsync(ct), cancellationToken);
}

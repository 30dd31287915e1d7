using Latchkey.Cluster;
using Latchkey.Common;
using Latchkey.Features.Accounts;
using Latchkey.Features.Email;
using Latchkey.Features.Scopes;
using Latchkey.Features.SecurityEvents;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Features.ApiKeys;

/// <summary>Creating, listing, revoking and checking API keys.</summary>
public sealed partial class ApiKeyService(
    LatchkeyDbContext db, ScopeCatalog catalog, TimeProvider time, ILogger<ApiKeyService> logger,
    SnapshotCache<ApiKeySnapshot> cache, UsageStamps usage, SecurityEventLog securityEvents, SecurityNotices notices, UserProfiles owners)
{
    /// <summary>API keys look like <c>lk_ak_</c> + 43 base62 characters + a 6-character checksum.</summary>
    public static readonly OpaqueSecretFormat Format = new("lk_ak_");

    /// <summary>Last-used times are written at most this often per key, to keep writes off the hot path.</summary>
    private static readonly TimeSpan LastUsedResolution = TimeSpan.FromMinutes(1);

    public sealed record Created(ApiKey Key, string Secret);

    public async Task<(Created? Created, Dictionary<string, string[]> Errors)> CreateAsync(
        string userId, string? name, IReadOnlyCollection<string>? scopes, DateTimeOffset? expiresAt, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        var now = time.GetUtcNow();
        name = name?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > ApiKeyLimits.NameMaxLength || name.Any(char.IsControl))
        {
            errors["name"] = [$"Give the key a name of 1 to {ApiKeyLimits.NameMaxLength} printable characters, so you can tell it apart later."];
        }
        if (!catalog.TryNormalize(scopes, out var normalizedScopes, out var scopeError))
        {
            errors["scopes"] = [scopeError!];
        }
        if (expiresAt is { } expiry && expiry <= now)
        {
            errors["expires_at"] = ["The expiry must be in the future."];
        }
        if (errors.Count > 0)
        {
            return (null, errors);
        }

        var active = await db.ApiKeys.CountAsync(k => k.UserId == userId && k.RevokedAt == null, cancellationToken);
        if (active >= ApiKeyLimits.MaxActiveKeysPerUser)
        {
            errors["name"] = [$"You already have {active} active keys, the most allowed. Revoke one you no longer use."];
            return (null, errors);
        }

        var secret = Format.Generate();
        var key = new ApiKey
        {
            Id = Identifiers.New("key"),
            UserId = userId,
            Name = name!,
            DisplayPrefix = Format.DisplayPrefix(secret),
            SecretHash = SecretHash.Compute(secret),
            Scopes = string.Join(' ', normalizedScopes),
            CreatedAt = now,
            ExpiresAt = expiresAt?.ToUniversalTime(),
        };
        db.ApiKeys.Add(key);
        await db.SaveChangesAsync(cancellationToken);
        LogCreated(logger, key.Id, key.UserId);
        securityEvents.Record(userId, SecurityEventTypes.ApiKeyCreated, key.Id, detail: "scopes: " + key.Scopes);
        notices.ApiKeyCreated(userId, key.Id, key.Name, key.Scopes);
        return (new Created(key, secret), errors);
    }

    /// <summary>The user's keys that are not revoked, newest first.</summary>
    public async Task<List<ApiKey>> ListAsync(string userId, CancellationToken cancellationToken)
    {
        return await db.ApiKeys.AsNoTracking()
            .Where(k => k.UserId == userId && k.RevokedAt == null)
            .OrderByDescending(k => k.CreatedAt)
            .ToListAsync(cancellationToken);
    }

    public Task<ApiKey?> FindAsync(string userId, string id, CancellationToken cancellationToken) =>
        db.ApiKeys.AsNoTracking().FirstOrDefaultAsync(k => k.Id == id && k.UserId == userId && k.RevokedAt == null, cancellationToken);

    /// <summary>Revokes one of the user's keys. False when the user has no such active key.</summary>
    public async Task<bool> RevokeAsync(string userId, string id, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var revoked = await db.ApiKeys
            .Where(k => k.Id == id && k.UserId == userId && k.RevokedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(k => k.RevokedAt, now), cancellationToken);
        if (revoked > 0)
        {
            LogRevoked(logger, id, userId);
            securityEvents.Record(userId, SecurityEventTypes.ApiKeyRevoked, id);
        }
        return revoked > 0;
    }

    /// <summary>Checks a presented key. Malformed keys are refused before any database look-up.</summary>
    public async Task<ApiKeyCheck> AuthenticateAsync(string presented, CancellationToken cancellationToken)
    {
        if (!Format.IsWellFormed(presented))
        {
            return ApiKeyCheck.Fail(ApiKeyCheckFailure.Malformed);
        }

        var hash = SecretHash.Compute(presented);
        var key = await cache.GetOrLoadAsync(Convert.ToBase64String(hash), (db, hash), static async (state, ct) =>
        {
            var row = await state.db.ApiKeys.AsNoTracking()
                .Where(k => k.SecretHash == state.hash)
                .Select(k => new { k.Id, k.UserId, k.Scopes, k.ExpiresAt, k.RevokedAt, k.SecretHash })
                .FirstOrDefaultAsync(ct);
            return row is null
                ? null
                : new ApiKeySnapshot(row.Id, row.UserId, row.Scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries), row.ExpiresAt, row.RevokedAt, row.SecretHash);
        }, cancellationToken);

        if (key is null || !SecretHash.Matches(key.SecretHash, presented))
        {
            return ApiKeyCheck.Fail(ApiKeyCheckFailure.Unknown);
        }
        if (key.RevokedAt is not null)
        {
            return ApiKeyCheck.Fail(ApiKeyCheckFailure.Revoked);
        }
        var now = time.GetUtcNow();
        if (key.ExpiresAt is { } expiresAt && expiresAt <= now)
        {
            return ApiKeyCheck.Fail(ApiKeyCheckFailure.Expired);
        }
        // The owner's standing (cached with the users table): a disabled account's keys are refused, not revoked.
        if (await owners.FindAsync(key.UserId, cancellationToken) is not { Disabled: false })
        {
            return ApiKeyCheck.Fail(ApiKeyCheckFailure.AccountDisabled);
        }

        if (usage.ShouldRecord(key.Id, now, LastUsedResolution))
        {
            await LastUseStamp.StampAsync(db, () => db.ApiKeys.Where(k => k.Id == key.Id)
                .ExecuteUpdateAsync(s => s.SetProperty(k => k.LastUsedAt, now), cancellationToken));
        }
        return ApiKeyCheck.Success(key.Id, key.UserId, key.Scopes);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "API key {KeyId} created for user {UserId}")]
    private static partial void LogCreated(ILogger logger, string keyId, string userId);

    [LoggerMessage(Level = LogLevel.Information, Message = "API key {KeyId} of user {UserId} revoked")]
    private static partial void LogRevoked(ILogger logger, string keyId, string userId);
}

/// <summary>What checking a key needs, as read from the database (cached; see <see cref="SnapshotCache{TValue}"/>).</summary>
public sealed record ApiKeySnapshot(string Id, string UserId, string[] Scopes, DateTimeOffset? ExpiresAt, DateTimeOffset? RevokedAt, byte[] SecretHash);

public enum ApiKeyCheckFailure
{
    None,
    Malformed,
    Unknown,
    Revoked,
    Expired,
    AccountDisabled,
}

/// <summary>The outcome of checking a presented API key.</summary>
public readonly record struct ApiKeyCheck(ApiKeyCheckFailure Failure, string? KeyId, string? UserId, IReadOnlyList<string> Scopes)
{
    public bool Succeeded => Failure == ApiKeyCheckFailure.None;

    public static ApiKeyCheck Success(string keyId, string userId, IReadOnlyList<string> scopes) =>
        new(ApiKeyCheckFailure.None, keyId, userId, scopes);

    public static ApiKeyCheck Fail(ApiKeyCheckFailure failure) => new(failure, null, null, []);

    public string FailureDescription => Failure switch
    {
        ApiKeyCheckFailure.Malformed => "The API key is malformed.",
        ApiKeyCheckFailure.Unknown => "The API key is not valid.",
        ApiKeyCheckFailure.Revoked => "The API key has been revoked.",
        ApiKeyCheckFailure.Expired => "The API key has expired.",
        ApiKeyCheckFailure.AccountDisabled => "The API key's account is disabled.",
        _ => "",
    };
}

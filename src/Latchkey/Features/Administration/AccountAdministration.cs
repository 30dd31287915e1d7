using System.Text.Json.Serialization;
using Latchkey.Features.Accounts;
using Latchkey.Features.SecurityEvents;
using Latchkey.Storage;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Latchkey.Features.Administration;

/// <summary>An account's state as the CLI's JSON and the admin pages name it.</summary>
public static class UserStatuses
{
    public const string Active = "active";
    public const string Disabled = "disabled";
    /// <summary>Locked after failed sign-ins, until <see cref="UserSummary.LockedUntil"/>.</summary>
    public const string Locked = "locked";
}

/// <summary>An account as an administrator sees it in a list.</summary>
public sealed record UserSummary(string Id, string Email, string Name, string TimeZone, DateTimeOffset CreatedAt, bool EmailConfirmed,
    string Status, DateTimeOffset? LockedUntil, IReadOnlyList<string> Roles)
{
    [JsonIgnore]
    public bool IsAdmin => Roles.Contains(AccountRoles.Admin);

    /// <summary>The status badge's colour class on the admin pages: ok, off (disabled) or warn (locked).</summary>
    [JsonIgnore]
    public string StatusClass => Status switch { UserStatuses.Active => "ok", UserStatuses.Disabled => "off", _ => "warn" };

    /// <summary>"active", "disabled" or "locked until ..." (after failed sign-ins).</summary>
    [JsonIgnore]
    public string StatusText => LockedUntil is { } until ? $"locked until {until:yyyy-MM-dd HH:mm} UTC" : Status;
}

/// <summary>One account and what it owns.</summary>
public sealed record UserDetails(UserSummary User, int ActiveApiKeys, int OwnedApps, int ValidAuthorizations, int Credentials, int McpServers,
    bool TwoFactorEnabled, bool TwoFactorRequired, int Passkeys, int Sessions);

/// <summary>What disabling revoked.</summary>
public sealed record DisableOutcome(long Authorizations, long Tokens);

/// <summary>
/// What an administrator does to accounts, the same from the CLI (<c>latchkey users ...</c>) and
/// the admin pages (<c>/admin/users</c>): each action records a security event on the account
/// naming who did it (<c>actor</c>: the CLI command or the administrator's e-mail address).
/// </summary>
public sealed class AccountAdministration(
    LatchkeyDbContext db,
    UserManager<LatchkeyUser> users,
    RoleManager<IdentityRole> roles,
    IOpenIddictAuthorizationManager authorizations,
    IOpenIddictTokenManager tokens,
    SecurityEventLog securityEvents,
    AccountSecurity.AccountSessions sessions,
    TimeProvider time)
{
    public const int ListLimit = 500;

    /// <summary>Accounts whose e-mail address or name contains <paramref name="search"/> (any case), oldest first.</summary>
    public async Task<List<UserSummary>> SearchAsync(string? search, int limit, CancellationToken cancellationToken)
    {
        var query = db.Users.AsNoTracking();
        if (search?.Trim() is { Length: > 0 } text)
        {
            var pattern = text.ToUpperInvariant();
            // The normalized columns are upper case, so one comparison works the same on SQLite and
            // PostgreSQL. ToUpper here is SQL's upper(), not .NET's (the culture rules do not apply).
#pragma warning disable CA1304, CA1311, CA1862
            query = query.Where(u => u.NormalizedEmail!.Contains(pattern) || u.DisplayName.ToUpper().Contains(pattern));
#pragma warning restore CA1304, CA1311, CA1862
        }
        var found = await query.OrderBy(u => u.CreatedAt).ThenBy(u => u.Id).Take(Math.Clamp(limit, 1, ListLimit)).ToListAsync(cancellationToken);
        return await SummarizeAsync(found, cancellationToken);
    }

    public Task<LatchkeyUser?> FindByIdAsync(string id) => users.FindByIdAsync(id);

    public async Task<UserDetails> DetailsAsync(LatchkeyUser user, CancellationToken cancellationToken) => new(
        (await SummarizeAsync([user], cancellationToken))[0],
        await db.ApiKeys.CountAsync(k => k.UserId == user.Id && k.RevokedAt == null, cancellationToken),
        await db.OAuthApplications.CountAsync(a => a.OwnerId == user.Id, cancellationToken),
        await db.OAuthAuthorizations.CountAsync(a => a.Subject == user.Id && a.Status == Statuses.Valid, cancellationToken),
        await db.BrokerCredentials.CountAsync(c => c.AccountId == user.Id, cancellationToken),
        await db.McpServers.CountAsync(s => s.OwnerId == user.Id, cancellationToken),
        user.TwoFactorEnabled,
        user.TwoFactorRequired,
        await db.UserPasskeys.CountAsync(p => p.UserId == user.Id, cancellationToken),
        await db.AccountSessions.CountAsync(s => s.UserId == user.Id && s.ExpiresAt > time.GetUtcNow(), cancellationToken));

    /// <summary>
    /// Disables the account: it cannot sign in, its API keys are refused (kept), its browser
    /// sessions end, and every app's sign-in and token of it is revoked.
    /// </summary>
    public async Task<DisableOutcome> DisableAsync(LatchkeyUser user, string actor, CancellationToken cancellationToken)
    {
        await AccountDisabling.DisableAsync(users, user);
        await EndBrowserSessionsAsync(user, cancellationToken);
        var outcome = new DisableOutcome(
            await authorizations.RevokeBySubjectAsync(user.Id, cancellationToken),
            await tokens.RevokeBySubjectAsync(user.Id, cancellationToken));
        securityEvents.Record(user.Id, SecurityEventTypes.AccountDisabled,
            detail: $"by {actor}: {outcome.Authorizations} app sign-in(s), {outcome.Tokens} token(s) revoked");
        return outcome;
    }

    public async Task EnableAsync(LatchkeyUser user, string actor)
    {
        await users.SetLockoutEndDateAsync(user, null);
        await users.ResetAccessFailedCountAsync(user);
        securityEvents.Record(user.Id, SecurityEventTypes.AccountEnabled, detail: $"by {actor}");
    }

    /// <summary>Ends every browser session of the account at its next request (apps' tokens stay: revoke those by disabling).</summary>
    public async Task EndSessionsAsync(LatchkeyUser user, string actor)
    {
        await users.UpdateSecurityStampAsync(user);
        await EndBrowserSessionsAsync(user, CancellationToken.None);
        securityEvents.Record(user.Id, SecurityEventTypes.SessionsEnded, detail: $"by {actor}");
    }

    /// <summary>
    /// Requires (or stops requiring) a second factor of the account: without one it is sent to set
    /// it up at its next request. False when it already was as asked.
    /// </summary>
    public async Task<bool> SetTwoFactorRequiredAsync(LatchkeyUser user, bool required, string actor)
    {
        if (user.TwoFactorRequired == required)
        {
            return false;
        }
        user.TwoFactorRequired = required;
        await users.UpdateAsync(user);
        securityEvents.Record(user.Id, required ? SecurityEventTypes.TwoFactorRequired : SecurityEventTypes.TwoFactorNoLongerRequired, detail: $"by {actor}");
        return true;
    }

    /// <summary>
    /// For a person who lost their authenticator and their recovery codes: the second factor is
    /// turned off and its key forgotten, and every session ends. If it is required, the next sign-in sets it up again.
    /// </summary>
    public async Task ResetTwoFactorAsync(LatchkeyUser user, AccountSecurity.TwoFactor twoFactor, string actor)
    {
        await twoFactor.DisableAsync(user, $"reset by {actor}");
        await EndBrowserSessionsAsync(user, CancellationToken.None);
    }

    // The stamp already ends them at their next request; the rows go too, so the account's session list says so.
    private Task<int> EndBrowserSessionsAsync(LatchkeyUser user, CancellationToken cancellationToken) =>
        sessions.EndAllAsync(user.Id, cancellationToken);

    /// <summary>
    /// Sets a new password (validated like any other; the security stamp changes, so other sessions
    /// end). A lock-out after failed sign-ins ends; a disabled account stays disabled.
    /// </summary>
    public async Task<IdentityResult> ResetPasswordAsync(LatchkeyUser user, string password, string actor)
    {
        var result = await users.ResetPasswordAsync(user, await users.GeneratePasswordResetTokenAsync(user), password);
        if (result.Succeeded)
        {
            await AccountDisabling.EndLockOutAfterResetAsync(users, user);
            await EndBrowserSessionsAsync(user, CancellationToken.None);
            securityEvents.Record(user.Id, SecurityEventTypes.PasswordResetByAdmin, detail: $"by {actor}");
        }
        return result;
    }

    /// <summary>Grants or takes the admin role; false when the account already was as asked. Its sessions end (they carry the roles).</summary>
    public async Task<bool> SetAdminAsync(LatchkeyUser user, bool grant)
    {
        if (grant && !await roles.RoleExistsAsync(AccountRoles.Admin))
        {
            await roles.CreateAsync(new IdentityRole(AccountRoles.Admin));
        }
        if (await users.IsInRoleAsync(user, AccountRoles.Admin) == grant)
        {
            return false;
        }
        var result = grant ? await users.AddToRoleAsync(user, AccountRoles.Admin) : await users.RemoveFromRoleAsync(user, AccountRoles.Admin);
        if (!result.Succeeded)
        {
            throw new InvalidOperationException("The role was not changed: " + string.Join(" ", result.Errors.Select(e => e.Description)));
        }
        await users.UpdateSecurityStampAsync(user);
        await EndBrowserSessionsAsync(user, CancellationToken.None);
        return true;
    }

    private async Task<List<UserSummary>> SummarizeAsync(IReadOnlyList<LatchkeyUser> found, CancellationToken cancellationToken)
    {
        var ids = found.Select(u => u.Id).ToList();
        var held = await (from userRole in db.UserRoles
                          join role in db.Roles on userRole.RoleId equals role.Id
                          where ids.Contains(userRole.UserId)
                          select new { userRole.UserId, role.Name }).ToListAsync(cancellationToken);
        var now = time.GetUtcNow();
        return [.. found.Select(u =>
        {
            var disabled = AccountDisabling.IsDisabled(u);
            var locked = !disabled && u.LockoutEnabled && u.LockoutEnd is { } end && end > now;
            return new UserSummary(u.Id, u.Email ?? "", u.DisplayName, u.TimeZone, u.CreatedAt, u.EmailConfirmed,
                disabled ? UserStatuses.Disabled : locked ? UserStatuses.Locked : UserStatuses.Active, locked ? u.LockoutEnd : null,
                [.. held.Where(r => r.UserId == u.Id && r.Name is not null).Select(r => r.Name!).Order(StringComparer.Ordinal)]);
        })];
    }
}

using Microsoft.AspNetCore.Identity;

namespace Latchkey.Features.Accounts;

/// <summary>
/// An administrator disables an account by locking it out until the end of time (ASP.NET Core
/// Identity's lock-out, so sign-in and the token endpoint refuse it as they refuse a locked
/// account), tells it apart from a lock-out after failed sign-ins by that date: a temporary
/// lock-out must not stop the account's API keys, or anyone could stop them by failing to sign in.
/// </summary>
public static class AccountDisabling
{
    /// <summary>The lock-out end of a disabled account (not <see cref="DateTimeOffset.MaxValue"/>: PostgreSQL keeps microseconds only).</summary>
    public static readonly DateTimeOffset Until = new(9999, 12, 31, 0, 0, 0, TimeSpan.Zero);

    public static bool IsDisabled(bool lockoutEnabled, DateTimeOffset? lockoutEnd) => lockoutEnabled && lockoutEnd >= Until;

    public static bool IsDisabled(LatchkeyUser user) => IsDisabled(user.LockoutEnabled, user.LockoutEnd);

    /// <summary>Nothing of the account works from here on: sign-in (the lock-out), sessions (the stamp), API keys (the profile).</summary>
    public static async Task DisableAsync(UserManager<LatchkeyUser> users, LatchkeyUser user)
    {
        await users.SetLockoutEnabledAsync(user, true);
        await users.SetLockoutEndDateAsync(user, Until);
        await users.UpdateSecurityStampAsync(user);
    }

    /// <summary>After a password reset (the page or the CLI): a lock-out after failed sign-ins ends; a disabling stays.</summary>
    public static async Task EndLockOutAfterResetAsync(UserManager<LatchkeyUser> users, LatchkeyUser user)
    {
        if (!IsDisabled(user))
        {
            await users.SetLockoutEndDateAsync(user, null);
        }
        await users.ResetAccessFailedCountAsync(user);
    }
}

using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Accounts;

/// <summary>
/// Every request with a session cookie checks that the account still exists, is not disabled, and
/// has the security stamp the cookie was issued with: a password change, a disabling, an
/// administrator's "sign out everywhere" or a deletion ends the account's other sessions at their
/// next request, not at Identity's next periodic check. The check reads the cached profile (a
/// change to the users table invalidates it on every node); a mismatch is confirmed against the
/// database before the session ends, so a node whose cache has not yet heard of a change (the
/// user's own new session after a reset elsewhere) does not sign anyone out by mistake.
/// Identity's own periodic validator runs after it (it refreshes the cookie's claims).
/// </summary>
internal static class SessionValidation
{
    public static async Task ValidatePrincipalAsync(CookieValidatePrincipalContext context)
    {
        var services = context.HttpContext.RequestServices;
        var claims = services.GetRequiredService<IOptions<IdentityOptions>>().Value.ClaimsIdentity;
        var userId = context.Principal?.FindFirstValue(claims.UserIdClaimType);
        var stamp = context.Principal?.FindFirstValue(claims.SecurityStampClaimType);
        if (userId is null)
        {
            await RejectAsync(context);
            return;
        }
        var profiles = services.GetRequiredService<UserProfiles>();
        var cancellationToken = context.HttpContext.RequestAborted;
        if (!Holds(await profiles.FindAsync(userId, cancellationToken), stamp) && !Holds(await profiles.ReadAsync(userId, cancellationToken), stamp))
        {
            await RejectAsync(context);
            return;
        }
        await SecurityStampValidator.ValidatePrincipalAsync(context);
    }

    private static bool Holds(UserProfile? profile, string? stamp) => profile is { Disabled: false } && profile.SecurityStamp == stamp;

    private static async Task RejectAsync(CookieValidatePrincipalContext context)
    {
        context.RejectPrincipal();
        await context.HttpContext.SignOutAsync(IdentityConstants.ApplicationScheme);
    }
}

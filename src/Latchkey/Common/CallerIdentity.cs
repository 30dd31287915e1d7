using System.Security.Claims;

namespace Latchkey.Common;

public static class CallerIdentity
{
    /// <summary>The signed-in user's id, on endpoints whose policy has already required an authenticated user.</summary>
    public static string UserId(this ClaimsPrincipal user) =>
        user.FindFirstValue(ClaimTypes.NameIdentifier) ?? throw new InvalidOperationException("Authenticated user without an id.");
}

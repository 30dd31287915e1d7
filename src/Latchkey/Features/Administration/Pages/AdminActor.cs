using System.Security.Claims;
using Latchkey.Common;

namespace Latchkey.Features.Administration.Pages;

/// <summary>How the admin pages name the administrator in the security log and settings: their e-mail address.</summary>
internal static class AdminActor
{
    public static string Of(ClaimsPrincipal admin) => $"{admin.FindFirstValue(ClaimTypes.Email) ?? admin.UserId()} (admin pages)";
}

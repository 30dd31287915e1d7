using System.Text;
using Microsoft.AspNetCore.WebUtilities;

namespace Latchkey.Features.Accounts;

/// <summary>
/// The links account e-mails carry (password reset, address confirmation): the account's id and
/// an ASP.NET Core Identity token, base64url-encoded so that it survives a URL and a mail client.
/// </summary>
public static class AccountLinks
{
    /// <summary><paramref name="site"/> is the server's address (<see cref="Common.ServerAddress.Base"/>), <paramref name="path"/> the page.</summary>
    public static string To(string site, string path, string userId, string token) =>
        $"{site}{path}?user={Uri.EscapeDataString(userId)}&code={WebEncoders.Base64UrlEncode(Encoding.UTF8.GetBytes(token))}";

    /// <summary>The token a link's <c>code</c> carries; null when it is not base64url (a link cut or changed on the way).</summary>
    public static string? TokenOf(string? code)
    {
        if (string.IsNullOrEmpty(code))
        {
            return null;
        }
        try
        {
            return Encoding.UTF8.GetString(WebEncoders.Base64UrlDecode(code));
        }
        catch (FormatException)
        {
            return null;
        }
    }
}

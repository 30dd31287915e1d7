using System.Text;

namespace Latchkey.Common;

/// <summary>Client credentials sent as HTTP Basic authentication (RFC 6749 §2.3.1).</summary>
internal static class BasicClientCredentials
{
    /// <summary>Whether the header is a Basic one, well formed or not.</summary>
    public static bool IsBasic(string? header) => header?.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase) == true;

    /// <summary>The client id and secret of a Basic header; nulls for any other header or a malformed one.</summary>
    public static (string? ClientId, string? Secret) Parse(string? header)
    {
        if (!IsBasic(header))
        {
            return (null, null);
        }
        try
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header![6..].Trim()));
            var colon = decoded.IndexOf(':', StringComparison.Ordinal);
            // Both halves are form-url-encoded.
            return colon < 0 ? (null, null) : (Uri.UnescapeDataString(decoded[..colon].Replace('+', ' ')), Uri.UnescapeDataString(decoded[(colon + 1)..].Replace('+', ' ')));
        }
        catch (FormatException)
        {
            return (null, null);
        }
    }
}

using Latchkey.Features.AuthorizationServer;
using Microsoft.Extensions.Options;

namespace Latchkey.Common;

/// <summary>The address this server is known by: the configured issuer, or the address of the request.</summary>
public static class ServerAddress
{
    /// <summary>The base URL without a trailing slash, e.g. <c>https://id.example.com</c>.</summary>
    public static string Base(HttpContext context)
    {
        var issuer = context.RequestServices.GetRequiredService<IOptions<AuthorizationServerOptions>>().Value.Issuer;
        if (!string.IsNullOrEmpty(issuer))
        {
            return issuer.TrimEnd('/');
        }
        var request = context.Request;
        return $"{request.Scheme}://{request.Host.ToUriComponent()}{request.PathBase.ToUriComponent()}";
    }

    /// <summary>
    /// Resource identifiers (RFC 8707) compare as URIs: scheme and host ignore case, and a trailing
    /// slash on an empty path does not matter.
    /// </summary>
    public static bool SameResource(string presented, string expected) =>
        Uri.TryCreate(presented, UriKind.Absolute, out var a) && Uri.TryCreate(expected, UriKind.Absolute, out var b)
        && Uri.Compare(a, b, UriComponents.SchemeAndServer | UriComponents.PathAndQuery, UriFormat.SafeUnescaped, StringComparison.Ordinal) == 0;
}

using Microsoft.Extensions.Options;

namespace Latchkey.Common;

/// <summary>The address this server is known by, when it is configured (the authorization server sets it from its issuer).</summary>
public sealed class ServerAddressOptions
{
    /// <summary>The issuer URL, e.g. <c>https://id.example.com/</c>; null means the address of each request.</summary>
    public string? Issuer { get; set; }
}

/// <summary>The address this server is known by: the configured issuer, or the address of the request.</summary>
public static class ServerAddress
{
    /// <summary>The base URL without a trailing slash, e.g. <c>https://id.example.com</c>.</summary>
    public static string Base(HttpContext context)
    {
        var issuer = context.RequestServices.GetRequiredService<IOptions<ServerAddressOptions>>().Value.Issuer;
        if (!string.IsNullOrEmpty(issuer))
        {
            return issuer.TrimEnd('/');
        }
        var request = context.Request;
        return $"{request.Scheme}://{request.Host.ToUriComponent()}{request.PathBase.ToUriComponent()}";
    }

    /// <summary>The issuer as OpenIddict writes it: the base URL with one trailing slash.</summary>
    public static string Issuer(HttpContext context) => Base(context) + "/";

    /// <summary>
    /// Resource identifiers (RFC 8707) compare as written, ignoring only case and a trailing slash:
    /// no normalisation, so that <c>…/servers/a/../b/mcp</c> is never taken for <c>…/servers/b/mcp</c>.
    /// </summary>
    public static bool SameResource(string presented, string expected) =>
        string.Equals(presented.TrimEnd('/'), expected.TrimEnd('/'), StringComparison.OrdinalIgnoreCase);
}

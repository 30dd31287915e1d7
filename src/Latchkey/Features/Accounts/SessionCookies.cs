using Microsoft.AspNetCore.Authentication.Cookies;

namespace Latchkey.Features.Accounts;

/// <summary>
/// The session cookie is <c>__Host-latchkey.session</c> over https: the browser then takes it only
/// with <c>Secure</c>, <c>Path=/</c> and no <c>Domain</c>, so neither a subdomain nor a plain-http
/// page can set or overwrite it. Over plain http (a development machine) the prefix would make
/// the browser drop the cookie, so it keeps its bare name there.
/// </summary>
internal sealed class SessionCookies(ICookieManager inner) : ICookieManager
{
    public const string HostPrefix = "__Host-";

    public string? GetRequestCookie(HttpContext context, string key) => inner.GetRequestCookie(context, NameFor(context, key));

    public void AppendResponseCookie(HttpContext context, string key, string? value, CookieOptions options) =>
        inner.AppendResponseCookie(context, NameFor(context, key), value, HostOnly(context, options));

    public void DeleteCookie(HttpContext context, string key, CookieOptions options) =>
        inner.DeleteCookie(context, NameFor(context, key), HostOnly(context, options));

    private static string NameFor(HttpContext context, string key) => context.Request.IsHttps ? HostPrefix + key : key;

    private static CookieOptions HostOnly(HttpContext context, CookieOptions options)
    {
        if (context.Request.IsHttps)
        {
            options.Secure = true;
            options.Path = "/";
            options.Domain = null;
        }
        return options;
    }
}

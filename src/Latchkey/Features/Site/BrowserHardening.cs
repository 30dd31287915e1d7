using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace Latchkey.Features.Site;

/// <summary>The site's browser-facing settings. Bound from the <c>Site</c> section.</summary>
public sealed class SiteOptions
{
    public const string SectionName = "Site";

    /// <summary>
    /// How long browsers keep to https once they saw Latchkey over it (HSTS, sent on https
    /// responses to a name that is not loopback); 0 sends none. Subdomains are not included:
    /// that is the domain owner's decision, for the proxy to add.
    /// </summary>
    [Range(0, 2 * 365)]
    public int HstsMaxAgeDays { get; set; } = 365;
}

/// <summary>
/// Security headers on every response: <c>nosniff</c> everywhere; on HTML (every page and error
/// page) a strict Content-Security-Policy with <c>frame-ancestors 'none'</c>, <c>X-Frame-Options: DENY</c>
/// for older browsers and <c>Referrer-Policy: no-referrer</c>; HSTS over https. Set when the
/// response starts, so that error pages and exception answers carry them too.
/// </summary>
public static class BrowserHardening
{
    internal static WebApplication UseBrowserHardening(this WebApplication app)
    {
        var hstsDays = app.Services.GetRequiredService<IOptions<SiteOptions>>().Value.HstsMaxAgeDays;
        var hsts = hstsDays > 0 ? $"max-age={hstsDays * 86_400}" : null;
        app.Use((context, next) =>
        {
            context.Response.OnStarting(static state =>
            {
                var (context, hsts) = ((HttpContext, string?))state;
                return ApplyAsync(context, hsts);
            }, (context, hsts));
            return next(context);
        });
        return app;
    }

    private static async Task ApplyAsync(HttpContext context, string? hsts)
    {
        var headers = context.Response.Headers;
        headers.XContentTypeOptions = "nosniff";
        if (hsts is not null && context.Request.IsHttps && !IsLoopback(context.Request.Host.Host))
        {
            headers.StrictTransportSecurity = hsts;
        }
        if (context.Response.ContentType?.StartsWith("text/html", StringComparison.OrdinalIgnoreCase) != true)
        {
            return;
        }
        // Antiforgery writes SAMEORIGIN; nothing here is meant to be framed at all.
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = "no-referrer";
        if (headers.ContainsKey(HeaderNames.ContentSecurityPolicy))
        {
            return;
        }
        var contributors = context.RequestServices.GetServices<IContentSecurityPolicyContributor>();
        var policy = ContentSecurityPolicy.For(context);
        foreach (var contributor in contributors)
        {
            await contributor.ContributeAsync(context, policy);
        }
        headers.ContentSecurityPolicy = policy.Build();
    }

    private static bool IsLoopback(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase) ||
        (System.Net.IPAddress.TryParse(host.Trim('[', ']'), out var address) && System.Net.IPAddress.IsLoopback(address));
}

using System.Security.Cryptography;
using System.Text;

namespace Latchkey.Features.Site;

/// <summary>
/// The Content-Security-Policy of one HTML response. The default is strict: scripts, styles,
/// images and requests from this server only, no inline script or style, no plugins, no
/// <c>&lt;base&gt;</c>, never framed, and forms that submit here only. A page or a feature widens
/// it for what it really does: a form whose redirect ends at an app or a provider
/// (<see cref="AllowFormTarget"/>), a known inline script by its hash, a third-party UI's styles.
/// </summary>
public sealed class ContentSecurityPolicy
{
    private static readonly object ItemKey = new();

    private readonly List<string> _formTargets = [];
    private readonly List<string> _scripts = [];
    private readonly List<string> _styles = [];
    private readonly List<string> _images = [];
    private readonly List<string> _fonts = [];
    private readonly List<string> _workers = [];

    /// <summary>The policy of the response being built for <paramref name="context"/>.</summary>
    public static ContentSecurityPolicy For(HttpContext context)
    {
        if (context.Items.TryGetValue(ItemKey, out var existing) && existing is ContentSecurityPolicy policy)
        {
            return policy;
        }
        policy = new ContentSecurityPolicy();
        context.Items[ItemKey] = policy;
        return policy;
    }

    /// <summary>The policy when nothing widened it.</summary>
    public static string Default { get; } = new ContentSecurityPolicy().Build();

    /// <summary>Lets forms lead, through redirects, to the origin of <paramref name="url"/> (Chromium checks every redirect of a form).</summary>
    public ContentSecurityPolicy AllowFormTarget(string? url)
    {
        if (SourceOf(url) is { } source && !_formTargets.Contains(source))
        {
            _formTargets.Add(source);
        }
        return this;
    }

    /// <summary>Allows exactly this inline script (by its SHA-256), nothing else inline.</summary>
    public ContentSecurityPolicy AllowInlineScript(string script) => Add(_scripts, HashSource(script));

    /// <summary>For a third-party UI that sets styles at run time (the API reference); never for Latchkey's own pages.</summary>
    public ContentSecurityPolicy AllowInlineStyles() => Add(_styles, "'unsafe-inline'");

    public ContentSecurityPolicy AllowImages(string source) => Add(_images, source);

    public ContentSecurityPolicy AllowFonts(string source) => Add(_fonts, source);

    public ContentSecurityPolicy AllowWorkers(string source) => Add(_workers, source);

    public string Build()
    {
        var policy = new StringBuilder("default-src 'none'");
        Directive(policy, "script-src", _scripts);
        Directive(policy, "style-src", _styles);
        Directive(policy, "img-src", _images);
        Directive(policy, "font-src", _fonts);
        Directive(policy, "connect-src", []);
        if (_workers.Count > 0)
        {
            Directive(policy, "worker-src", _workers);
        }
        Directive(policy, "form-action", _formTargets);
        policy.Append("; frame-ancestors 'none'; base-uri 'none'");
        return policy.ToString();
    }

    /// <summary><c>'sha256-…'</c> of an inline script or style, as CSP hashes it (UTF-8 of the exact text).</summary>
    public static string HashSource(string inline) => $"'sha256-{Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(inline)))}'";

    /// <summary>
    /// The CSP source for where a URL leads: <c>https://host:port</c> for web URLs and
    /// <c>scheme:</c> for an app's private-use scheme. Null for what is not an absolute URL.
    /// </summary>
    public static string? SourceOf(string? url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Scheme))
        {
            return null;
        }
        if (uri.Scheme is "http" or "https" && uri.HostNameType != UriHostNameType.IPv6)
        {
            return uri.IsDefaultPort ? $"{uri.Scheme}://{uri.IdnHost}" : $"{uri.Scheme}://{uri.IdnHost}:{uri.Port}";
        }
        // A scheme source: an app's private-use scheme, or http(s) to an IPv6 literal, which CSP
        // host sources cannot name. Uri has checked the scheme's characters already.
        return uri.Scheme + ":";
    }

    private ContentSecurityPolicy Add(List<string> sources, string source)
    {
        if (!sources.Contains(source))
        {
            sources.Add(source);
        }
        return this;
    }

    private static void Directive(StringBuilder policy, string name, List<string> extra)
    {
        policy.Append("; ").Append(name).Append(" 'self'");
        foreach (var source in extra)
        {
            policy.Append(' ').Append(source);
        }
    }
}

/// <summary>
/// Widens the policy of an HTML response from outside the page that renders it: responses a
/// library writes (OpenIddict's form_post page, the API reference) or a decision that depends on
/// the request (where a sign-in form will lead). Registered by the feature that knows.
/// </summary>
public interface IContentSecurityPolicyContributor
{
    ValueTask ContributeAsync(HttpContext context, ContentSecurityPolicy policy);
}

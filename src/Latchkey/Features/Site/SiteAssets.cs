using System.Collections.Frozen;
using System.Security.Cryptography;

namespace Latchkey.Features.Site;

/// <summary>
/// The pages' stylesheet and script, embedded in the assembly and served from memory. Their URLs
/// carry a hash of the content, so browsers may keep them for a year and still see every change.
/// </summary>
public static class SiteAssets
{
    private const string ResourcePrefix = "Latchkey.Assets.";

    private sealed record Asset(byte[] Content, string ContentType, string Version);

    private static readonly FrozenDictionary<string, Asset> Assets = Load();

    public static string StylesheetUrl { get; } = UrlOf("site.css");

    public static string ScriptUrl { get; } = UrlOf("site.js");

    private static string UrlOf(string name) => $"/assets/{name}?v={Assets[name].Version}";

    private static FrozenDictionary<string, Asset> Load()
    {
        var assembly = typeof(SiteAssets).Assembly;
        var assets = new Dictionary<string, Asset>(StringComparer.Ordinal);
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            var content = buffer.ToArray();
            var name = resource[ResourcePrefix.Length..];
            var type = name.EndsWith(".css", StringComparison.Ordinal) ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8";
            assets[name] = new Asset(content, type, Convert.ToHexStringLower(SHA256.HashData(content))[..12]);
        }
        return assets.ToFrozenDictionary(StringComparer.Ordinal);
    }

    internal static WebApplication MapSiteAssets(this WebApplication app)
    {
        app.MapGet("/assets/{name}", (string name, string? v, HttpContext context) =>
        {
            if (!Assets.TryGetValue(name, out var asset))
            {
                return Results.NotFound();
            }
            var etag = $"\"{asset.Version}\"";
            context.Response.Headers.CacheControl = v == asset.Version ? "public, max-age=31536000, immutable" : "no-cache";
            context.Response.Headers.ETag = etag;
            if (context.Request.Headers.IfNoneMatch == etag)
            {
                return Results.StatusCode(StatusCodes.Status304NotModified);
            }
            return Results.Bytes(asset.Content, asset.ContentType);
        }).ExcludeFromDescription().AllowAnonymous();
        return app;
    }
}

using System.Net;
using System.Text.RegularExpressions;

namespace Latchkey.Tests.Infrastructure;

/// <summary>What a browser does with Latchkey's server-rendered forms: fetch the page, keep the antiforgery token, post.</summary>
public static partial class Browser
{
    public static async Task<string> AntiforgeryTokenAsync(HttpClient client, string path)
    {
        var page = await client.GetAsync(path);
        var html = await page.Content.ReadAsStringAsync();
        Assert.True(page.StatusCode == HttpStatusCode.OK, $"GET {client.BaseAddress}{path.TrimStart('/')}: {(int)page.StatusCode} {html}");
        return AntiforgeryToken(html);
    }

    public static string AntiforgeryToken(string html)
    {
        var match = TokenPattern().Match(html);
        Assert.True(match.Success, "The page has no antiforgery token.");
        return WebUtility.HtmlDecode(match.Groups[1].Value);
    }

    /// <summary>Fetches the form at <paramref name="path"/> and posts <paramref name="fields"/> with its token.</summary>
    public static async Task<HttpResponseMessage> SubmitFormAsync(HttpClient client, string path, IDictionary<string, string> fields)
    {
        var token = await AntiforgeryTokenAsync(client, path);
        var form = new Dictionary<string, string>(fields) { ["__RequestVerificationToken"] = token };
        return await client.PostAsync(path, new FormUrlEncodedContent(form));
    }

    [GeneratedRegex("""name="__RequestVerificationToken"[^>]*value="([^"]+)""")]
    private static partial Regex TokenPattern();
}

using System.Text.RegularExpressions;
using Latchkey.Features.Site;

namespace Latchkey.Features.ApiDocs;

/// <summary>
/// The API reference page is Scalar's: its HTML carries one inline module script (its settings,
/// made from Latchkey's configuration, no request data) and its bundle adds styles at run time.
/// The page keeps the strict policy otherwise: its inline scripts are allowed by their hashes,
/// taken from the page Scalar wrote, and only on this one path; styles may be inline there.
/// </summary>
internal static partial class ApiReferencePolicy
{
    public static WebApplication UseApiReferencePolicy(this WebApplication app, string path)
    {
        app.UseWhen(context => context.Request.Path.Equals(path, StringComparison.OrdinalIgnoreCase), branch => branch.Use(async (context, next) =>
        {
            var original = context.Response.Body;
            using var page = new MemoryStream();
            context.Response.Body = page;
            try
            {
                await next(context);
            }
            finally
            {
                context.Response.Body = original;
            }
            if (context.Response.ContentType?.StartsWith("text/html", StringComparison.OrdinalIgnoreCase) == true)
            {
                var policy = ContentSecurityPolicy.For(context).AllowInlineStyles().AllowImages("data:").AllowFonts("data:").AllowWorkers("blob:");
                var html = System.Text.Encoding.UTF8.GetString(page.GetBuffer(), 0, (int)page.Length);
                foreach (Match script in InlineScript().Matches(html))
                {
                    policy.AllowInlineScript(script.Groups["body"].Value);
                }
            }
            page.Position = 0;
            await page.CopyToAsync(original, context.RequestAborted);
        }));
        return app;
    }

    // A <script> element without src, and its text exactly as the browser hashes it.
    [GeneratedRegex(@"<script(?![^>]*\bsrc\s*=)[^>]*>(?<body>.*?)</script>", RegexOptions.Singleline | RegexOptions.IgnoreCase)]
    private static partial Regex InlineScript();
}

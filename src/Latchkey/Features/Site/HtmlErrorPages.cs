using System.Text.Encodings.Web;

namespace Latchkey.Features.Site;

/// <summary>
/// Errors for people: a request from a browser (one that accepts text/html) gets a page in the
/// site's style that says what went wrong and what to do, instead of RFC 9457 JSON. Programs keep
/// getting problem details. Never a stack trace either way.
/// </summary>
internal sealed class HtmlErrorPages : IProblemDetailsWriter
{
    public bool CanWrite(ProblemDetailsContext context) =>
        context.HttpContext.Request.Headers.Accept.Any(value => value?.Contains("text/html", StringComparison.OrdinalIgnoreCase) == true);

    public async ValueTask WriteAsync(ProblemDetailsContext context)
    {
        var http = context.HttpContext;
        var status = context.ProblemDetails.Status ?? http.Response.StatusCode;
        var (title, advice) = Explain(status);
        // A problem written by Latchkey's own code says what happened; the framework's defaults do not add anything.
        var detail = context.ProblemDetails.Detail;
        var html = HtmlEncoder.Default;
        http.Response.ContentType = "text/html; charset=utf-8";
        http.Response.Headers.CacheControl = "no-store";
        await http.Response.WriteAsync($"""
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{html.Encode(title)} · Latchkey</title>
            <link rel="stylesheet" href="{SiteAssets.StylesheetUrl}">
            </head>
            <body>
            <header class="site-header"><div class="bar"><a class="brand" href="/">Latchkey</a></div></header>
            <main id="content" class="narrow">
            <h1>{html.Encode(title)}</h1>
            {(string.IsNullOrEmpty(detail) ? "" : $"<p role=\"alert\"><strong>{html.Encode(detail)}</strong></p>")}
            <p>{html.Encode(advice)}</p>
            <p><a href="/">Go to the start page</a></p>
            <p class="muted">Error {status} · reference <code>{html.Encode(http.TraceIdentifier)}</code></p>
            </main>
            </body>
            </html>
            """, http.RequestAborted);
    }

    private static (string Title, string Advice) Explain(int status) => status switch
    {
        StatusCodes.Status400BadRequest => ("This request could not be understood",
            "Something in the address or the form was not what this page expects. Go back, check what you entered and try again."),
        StatusCodes.Status401Unauthorized => ("Please sign in", "This page is for signed-in people. Sign in and try again."),
        StatusCodes.Status403Forbidden => ("You may not open this page", "Your account does not have access to it. If you think it should, ask the person who runs this Latchkey."),
        StatusCodes.Status404NotFound => ("This page does not exist",
            "The link may be old or mistyped, or what it pointed to was deleted. Check the address, or start again from the start page."),
        StatusCodes.Status405MethodNotAllowed => ("This page cannot do that", "Go back and use the page's own buttons and links."),
        StatusCodes.Status413PayloadTooLarge => ("That was too large", "The form or file you sent is larger than this server accepts. Try a smaller file."),
        StatusCodes.Status415UnsupportedMediaType => ("That kind of content is not accepted", "Go back and use the page's own form."),
        StatusCodes.Status429TooManyRequests => ("Too many requests", "Wait a minute, then try again."),
        >= 500 => ("Something went wrong on our side",
            "It is not your fault, and the error has been logged. Try again in a moment; if it keeps happening, tell whoever runs this Latchkey, with the reference below."),
        _ => ("This request could not be completed", "Go back and try again."),
    };
}

using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace Latchkey.Features.Operations;

/// <summary>
/// The last problem-details writer: ASP.NET Core's own writes only for a client that accepts JSON,
/// and with none left an error answer would itself become a 500. A client that asked for XML
/// still gets the error, as <c>application/problem+json</c> (RFC 9110 §12.1 lets a server ignore
/// Accept rather than answer 406).
/// </summary>
internal sealed class ProblemJsonFallback(IOptions<ProblemDetailsOptions> options, IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json) : IProblemDetailsWriter
{
    public bool CanWrite(ProblemDetailsContext context) => true;

    public ValueTask WriteAsync(ProblemDetailsContext context)
    {
        var problem = context.ProblemDetails;
        problem.Status ??= context.HttpContext.Response.StatusCode;
        problem.Title ??= ReasonPhrases.GetReasonPhrase(problem.Status.Value);
        options.Value.CustomizeProblemDetails?.Invoke(context);
        return new ValueTask(context.HttpContext.Response.WriteAsJsonAsync(
            problem, json.Value.SerializerOptions, "application/problem+json", context.HttpContext.RequestAborted));
    }
}

/// <summary>
/// JSON travels as UTF-8 (RFC 8259 §8.1). A body declared in another charset is refused with 415
/// before anything reads it: the model binder would otherwise fail on an encoding .NET does not
/// have (UTF-7) with an exception, not an answer.
/// </summary>
internal static class Utf8JsonOnly
{
    public const string Detail = "JSON bodies must be UTF-8 (RFC 8259 §8.1): send 'Content-Type: application/json' without a charset, or with charset=utf-8.";

    public static bool Refuses(HttpRequest request)
    {
        if (string.IsNullOrEmpty(request.ContentType) || !MediaTypeHeaderValue.TryParse(request.ContentType, out var type))
        {
            return false;
        }
        var json = type.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || type.Suffix.Equals("json", StringComparison.OrdinalIgnoreCase);
        var charset = HeaderUtilities.RemoveQuotes(type.Charset);
        return json && charset.HasValue
            && !charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase) && !charset.Equals("utf8", StringComparison.OrdinalIgnoreCase);
    }

    public static IApplicationBuilder UseUtf8JsonOnly(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        if (Refuses(context.Request))
        {
            await Common.Problems.WriteAsync(context, StatusCodes.Status415UnsupportedMediaType, Detail);
            return;
        }
        await next(context);
    });
}

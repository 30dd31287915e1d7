using Microsoft.AspNetCore.Mvc;

namespace Latchkey.Common;

/// <summary>Writes RFC 9457 problem details from places that are not endpoints (handlers, events).</summary>
public static class Problems
{
    public static async Task WriteAsync(HttpContext context, int status, string detail, IDictionary<string, object?>? extensions = null)
    {
        context.Response.StatusCode = status;
        var problem = new ProblemDetails { Status = status, Detail = detail };
        if (extensions is not null)
        {
            foreach (var (key, value) in extensions)
            {
                problem.Extensions[key] = value;
            }
        }
        var service = context.RequestServices.GetRequiredService<IProblemDetailsService>();
        await service.WriteAsync(new ProblemDetailsContext { HttpContext = context, ProblemDetails = problem });
    }
}

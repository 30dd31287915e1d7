using Latchkey.Common;
using Microsoft.AspNetCore.Identity;

namespace Latchkey.Features.Accounts;

/// <summary>
/// JSON endpoints for the signed-in user's own pages: authenticated by the session cookie, and
/// changes accepted from Latchkey's own origin only. A browser attaches the cookie to requests
/// another site makes (a sibling subdomain is "same site" for SameSite=Lax), so a cookie alone
/// does not show that the user meant the change.
/// </summary>
public static class BrowserSession
{
    /// <summary>Session-cookie authentication, and the origin check on every state-changing method.</summary>
    public static RouteGroupBuilder RequireBrowserSession(this RouteGroupBuilder group)
    {
        group.RequireAuthorization(policy => policy.AddAuthenticationSchemes(IdentityConstants.ApplicationScheme).RequireAuthenticatedUser())
            .AddEndpointFilter(static (context, next) =>
                RefusedOrigin(context.HttpContext) is { } origin ? ValueTask.FromResult<object?>(CrossOrigin(origin)) : next(context))
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden);
        return group;
    }

    /// <summary>
    /// Where a state-changing request came from when that is not this server; null when it may
    /// proceed. Browsers that send <c>Sec-Fetch-Site</c> say it directly; otherwise <c>Origin</c>
    /// must be this server's (as the request addressed it, or the configured issuer). A request
    /// with neither comes from no browser (curl, a script holding the cookie) and is not a
    /// cross-site forgery.
    /// </summary>
    public static string? RefusedOrigin(HttpContext context)
    {
        var request = context.Request;
        if (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method) || HttpMethods.IsOptions(request.Method))
        {
            return null;
        }
        var fetchSite = request.Headers["Sec-Fetch-Site"].ToString();
        var origin = request.Headers.Origin.ToString();
        if (fetchSite.Length > 0)
        {
            // "none": the user's own action (typed, bookmarked); "same-site" is a sibling subdomain, not us.
            return fetchSite is "same-origin" or "none" ? null : origin.Length > 0 ? origin : fetchSite;
        }
        if (origin.Length == 0)
        {
            return null;
        }
        var own = $"{request.Scheme}://{request.Host.ToUriComponent()}";
        return SameOrigin(origin, own) || SameOrigin(origin, ServerAddress.Base(context)) ? null : origin;
    }

    private static bool SameOrigin(string origin, string url) =>
        origin != "null" && Uri.TryCreate(origin, UriKind.Absolute, out var presented) && Uri.TryCreate(url, UriKind.Absolute, out var own) &&
        Uri.Compare(presented, own, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0;

    private static Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult CrossOrigin(string origin) => TypedResults.Problem(
        statusCode: StatusCodes.Status403Forbidden,
        title: "Cross-origin request refused",
        detail: $"This change came from another origin ({InputEcho.Quote(origin)}); the browser session accepts changes from Latchkey's own pages only. "
            + "Server-to-server callers use an API key or an access token instead of the session cookie.");
}

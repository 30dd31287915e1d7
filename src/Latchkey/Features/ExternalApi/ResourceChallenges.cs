using Latchkey.Common;
using Microsoft.Net.Http.Headers;

namespace Latchkey.Features.ExternalApi;

/// <summary>
/// The <c>WWW-Authenticate</c> challenges of Latchkey's protected resources: one for Bearer tokens
/// (RFC 6750 §3) and one for DPoP-bound tokens (RFC 9449 §7.1, naming the proof algorithms), with
/// the error, when there is one, on the scheme the caller used.
/// </summary>
public static class ResourceChallenges
{
    /// <summary>Whether the request presents its token with the DPoP scheme.</summary>
    public static bool SentWithDPoP(HttpRequest request) => DPoPScheme.TokenOf(request.Headers.Authorization.ToString()) is not null;

    /// <param name="parameters">The parameters both challenges carry, such as <c>realm="latchkey"</c>.</param>
    public static void Append(HttpContext context, string parameters, string? error = null, string? description = null, string? scope = null)
    {
        var errorParameters = error is null ? "" : $", error=\"{error}\", error_description=\"{Quoted(description)}\"";
        if (scope is not null)
        {
            errorParameters += $", scope=\"{scope}\"";
        }
        var dpop = SentWithDPoP(context.Request);
        var headers = context.Response.Headers;
        headers.Append(HeaderNames.WWWAuthenticate, $"Bearer {parameters}{(dpop ? "" : errorParameters)}");
        headers.Append(HeaderNames.WWWAuthenticate,
            $"{DPoPScheme.Name} {parameters}, algs=\"{string.Join(' ', DPoPScheme.SigningAlgorithms)}\"{(dpop ? errorParameters : "")}");
    }

    private static string Quoted(string? text) => (text ?? "").Replace('"', '\'').Replace('\\', '/');
}

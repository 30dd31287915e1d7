using System.Collections.Frozen;
using Latchkey.Common;

namespace Latchkey.Features.Broker.Providers;

/// <summary>What a provider definition must satisfy (catalog entries are checked by a test; custom ones at creation).</summary>
public static class ProviderDefinitionRules
{
    /// <summary>Headers that carry the HTTP exchange itself or the caller's identity: a credential may not take their place.</summary>
    public static readonly FrozenSet<string> ReservedHeaders = new[]
    {
        "Host", "Content-Length", "Content-Type", "Content-Encoding", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "TE", "Trailer",
        "Cookie", "Set-Cookie", "Proxy-Authorization", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Accept-Encoding",
    }.ToFrozenSet(StringComparer.OrdinalIgnoreCase);

    /// <returns>The first problem, in words for the caller; null when the definition is usable.</returns>
    public static string? Check(ProviderDefinition definition)
    {
        // JSON null for a list or map, or an entry in one, instead of leaving it out.
        if (definition.HeaderNames is null || definition.HeaderNames.Any(n => n is null) || definition.ApiHosts is null || definition.ApiHosts.Any(h => h is null)
            || definition.ExtraHeaders is null || definition.ExtraHeaders.Values.Any(v => v is null) || definition.DefaultScopes is null
            || definition.ExtraAuthorizeParams is null || definition.Template is null || definition.AuthType is null || definition.TokenAuth is null)
        {
            return "The definition's lists and maps (header_names, api_hosts, extra_headers, default_scopes, ...) may be left out but not null, nor hold null.";
        }
        if (!AuthTypes.All.Contains(definition.AuthType))
        {
            return $"auth_type must be one of {string.Join(", ", AuthTypes.All)}.";
        }
        if (string.IsNullOrWhiteSpace(definition.Name) || definition.Name.Length > 100)
        {
            return "The provider needs a name of 1 to 100 characters.";
        }
        if (definition.AuthType == AuthTypes.OAuth2 && (string.IsNullOrWhiteSpace(definition.AuthorizeUrl) || string.IsNullOrWhiteSpace(definition.TokenUrl)))
        {
            return "An oauth2 provider needs authorize_url and token_url.";
        }
        if (definition.AuthType == AuthTypes.ClientCredentials && string.IsNullOrWhiteSpace(definition.TokenUrl))
        {
            return "A client_credentials provider needs token_url.";
        }
        if (definition.TokenAuth is not ("basic" or "post"))
        {
            return "token_auth must be 'basic' or 'post'.";
        }
        if (definition.AuthType == AuthTypes.Header && definition.HeaderNames.Length is 0 or > 10)
        {
            return "A header provider needs header_names: the 1 to 10 headers each credential supplies.";
        }
        foreach (var name in definition.HeaderNames.Append(definition.HeaderName).Concat(definition.ExtraHeaders.Keys).OfType<string>())
        {
            if (!HttpHeaderName.IsValid(name) || ReservedHeaders.Contains(name) || !Sendable(name))
            {
                return $"{InputEcho.Quote(name)} cannot carry a credential: use a header name (letters, digits, '-'), not one of {string.Join(", ", ReservedHeaders.Order())}.";
            }
        }
        if ((definition.HeaderPrefix ?? "").Length > 40 || (definition.HeaderPrefix ?? "").Any(char.IsControl)
            || definition.ExtraHeaders.Values.Any(v => v.Length > 500 || v.Any(char.IsControl)))
        {
            return "header_prefix and extra_headers values must be short single-line text.";
        }
        if (definition.ApiBaseUrl is { } api && (!Uri.TryCreate(api, UriKind.Absolute, out var apiUri) || apiUri.Scheme is not ("https" or "http") || apiUri.Query.Length > 0 || apiUri.Fragment.Length > 0))
        {
            return "api_base_url must be an absolute http(s) URL without a query or fragment.";
        }
        if (definition.ApiHosts.Any(h => !ProviderCatalog.HostPart().IsMatch(h)))
        {
            return "api_hosts must be host names.";
        }
        if (definition.ApiHosts.Length > 0 && Uri.TryCreate(definition.ApiBaseUrl, UriKind.Absolute, out var baseUri)
            && !definition.ApiHosts.Contains(baseUri.Host, StringComparer.OrdinalIgnoreCase))
        {
            return "api_hosts must include the host of api_base_url.";
        }
        if (definition.TestRequest is { } test)
        {
            if (definition.ApiBaseUrl is null)
            {
                return "test_request needs api_base_url.";
            }
            if (test.Method is not ("GET" or "HEAD" or "POST") || !test.Path.StartsWith('/') || test.Path.StartsWith("//", StringComparison.Ordinal) || test.Path.Length > 500)
            {
                return "test_request needs a method (GET, HEAD or POST) and a path starting with '/'.";
            }
        }
        return null;
    }

    /// <summary>Whether a request can carry the header at all (not a content or response header such as <c>Content-Language</c> or <c>Location</c>).</summary>
    private static bool Sendable(string name)
    {
        using var probe = new HttpRequestMessage();
        return probe.Headers.TryAddWithoutValidation(name, "x");
    }


}

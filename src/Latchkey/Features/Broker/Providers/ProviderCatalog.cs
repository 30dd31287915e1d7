using System.Collections.Frozen;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Latchkey.Features.Broker.Providers;

/// <summary>How a provider's credentials are obtained and sent.</summary>
public static class AuthTypes
{
    /// <summary>OAuth 2.0 authorization code, run for a person (<c>/mcp/oauth/init</c>).</summary>
    public const string OAuth2 = "oauth2";

    /// <summary>OAuth 2.0 client credentials: machine to machine, fetched again when it expires.</summary>
    public const string ClientCredentials = "client_credentials";

    /// <summary>An API key sent in a header (<c>header_name</c>, <c>header_prefix</c>).</summary>
    public const string ApiKey = "api_key";

    /// <summary>HTTP Basic: a user name and password (or a key in either place).</summary>
    public const string Basic = "basic";

    /// <summary>A static bearer token (a personal access token).</summary>
    public const string Bearer = "bearer";

    /// <summary>Custom headers (<c>header_names</c>), every one secret.</summary>
    public const string Header = "header";

    public static readonly string[] All = [OAuth2, ClientCredentials, ApiKey, Basic, Bearer, Header];

    /// <summary>Whether the provider needs an OAuth client id and secret registered with it.</summary>
    public static bool UsesOAuthClient(string authType) => authType is OAuth2 or ClientCredentials;
}

/// <summary>A request that shows whether a credential works (for example <c>GET /user</c>): used at creation and by the health check.</summary>
public sealed record ProviderTestRequest
{
    public string Method { get; init; } = "GET";

    /// <summary>A path below <c>api_base_url</c>.</summary>
    public string Path { get; init; } = "/";
}

/// <summary>
/// How to talk to one provider: how its credentials are obtained (OAuth endpoints, or typed in),
/// how they are sent to its API, and its quirks. Catalog entries ship in the assembly
/// (<c>catalog.json</c>); custom providers carry their own definition. docs/broker.md describes every field.
/// </summary>
public sealed record ProviderDefinition
{
    public string Key { get; init; } = "";
    public string Name { get; init; } = "";

    /// <summary>One of <see cref="AuthTypes.All"/>.</summary>
    public string AuthType { get; init; } = AuthTypes.OAuth2;
    public string AuthorizeUrl { get; init; } = "";
    public string TokenUrl { get; init; } = "";
    public string? RevocationUrl { get; init; }
    public string? UserinfoUrl { get; init; }

    /// <summary>Where the external account id is: a dotted path in the userinfo answer, or in the token answer when there is no userinfo URL.</summary>
    public string? AccountId { get; init; }
    public string? AccountLabel { get; init; }

    public string[] DefaultScopes { get; init; } = [];
    public string ScopeSeparator { get; init; } = " ";

    /// <summary>The authorize parameter that carries scopes (Slack's user scopes go in <c>user_scope</c>).</summary>
    public string ScopeParameter { get; init; } = "scope";
    public bool Pkce { get; init; }

    /// <summary><c>basic</c> (HTTP Basic) or <c>post</c> (in the form body).</summary>
    public string TokenAuth { get; init; } = "post";
    public Dictionary<string, string> ExtraAuthorizeParams { get; init; } = [];

    /// <summary>A nested object holding the tokens in the token answer (Slack: <c>authed_user</c>).</summary>
    public string? TokenPath { get; init; }
    public bool Expires { get; init; }
    public bool Refreshable { get; init; }

    /// <summary>The header that carries the credential on API calls; by default <c>Authorization</c> (<c>X-API-Key</c> for API keys).</summary>
    public string? HeaderName { get; init; }

    /// <summary>What goes before the secret in that header; by default <c>Bearer </c> (nothing for API keys, <c>Basic </c> for basic).</summary>
    public string? HeaderPrefix { get; init; }

    /// <summary>Basic auth: a fixed user name (Mailchimp takes any) or password (Freshdesk's is <c>X</c>) the person does not type.</summary>
    public string? BasicUsername { get; init; }
    public string? BasicPassword { get; init; }

    /// <summary>For <c>header</c> credentials: the headers a credential supplies (Algolia's application id and key).</summary>
    public string[] HeaderNames { get; init; } = [];

    /// <summary>Headers every API call carries (Notion's <c>Notion-Version</c>); not secret.</summary>
    public Dictionary<string, string> ExtraHeaders { get; init; } = [];

    /// <summary>The API's base URL: the proxy forwards below it and the test request goes to it.</summary>
    public string? ApiBaseUrl { get; init; }

    /// <summary>The hosts the proxy may send the credential to; by default the host of <see cref="ApiBaseUrl"/>.</summary>
    public string[] ApiHosts { get; init; } = [];
    public ProviderTestRequest? TestRequest { get; init; }

    /// <summary>Values substituted into <c>{name}</c> placeholders of the URLs; null means required at creation.</summary>
    public Dictionary<string, string?> Template { get; init; } = [];
    public string? Notes { get; init; }

    public IEnumerable<string> Urls => new[] { AuthorizeUrl, TokenUrl, RevocationUrl, UserinfoUrl, ApiBaseUrl }.Where(u => !string.IsNullOrEmpty(u)).OfType<string>();

    /// <summary>The header the credential goes in, with its default for the auth type.</summary>
    public string EffectiveHeaderName => HeaderName ?? (AuthType == AuthTypes.ApiKey ? "X-API-Key" : "Authorization");

    /// <summary>The prefix before the secret, with its default for the auth type.</summary>
    public string EffectiveHeaderPrefix => HeaderPrefix ?? AuthType switch
    {
        AuthTypes.ApiKey => "",
        AuthTypes.Basic => "Basic ",
        _ => "Bearer ",
    };

    /// <summary>The hosts the proxy may call: <see cref="ApiHosts"/>, or the base URL's host.</summary>
    public IReadOnlyList<string> ProxyHosts =>
        ApiHosts.Length > 0 ? ApiHosts
        : Uri.TryCreate(ApiBaseUrl, UriKind.Absolute, out var api) ? [api.Host]
        : [];
}

/// <summary>The built-in catalog of well-known providers.</summary>
public sealed partial class ProviderCatalog
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        ReadCommentHandling = JsonCommentHandling.Skip,
    };

    private readonly FrozenDictionary<string, ProviderDefinition> _byKey;

    public ProviderCatalog()
    {
        using var stream = typeof(ProviderCatalog).Assembly.GetManifestResourceStream("Latchkey.Broker.catalog.json")
                           ?? throw new InvalidOperationException("The provider catalog is missing from the assembly.");
        All = JsonSerializer.Deserialize<ProviderDefinition[]>(stream, Json) ?? [];
        _byKey = All.ToFrozenDictionary(p => p.Key, StringComparer.Ordinal);
    }

    public IReadOnlyList<ProviderDefinition> All { get; }

    public ProviderDefinition? Find(string key) => _byKey.GetValueOrDefault(key);

    /// <summary>Fills the template placeholders; returns the missing or invalid names instead when there are any.</summary>
    public static (ProviderDefinition? Resolved, string? Error) Resolve(ProviderDefinition definition, IReadOnlyDictionary<string, string> values)
    {
        var merged = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, fallback) in definition.Template)
        {
            var value = values.GetValueOrDefault(name) ?? fallback;
            if (string.IsNullOrEmpty(value))
            {
                return (null, $"The {definition.Name} provider needs the template value '{name}'.");
            }
            // Only host-name material: no slashes, @, ports or spaces that could redirect a request elsewhere.
            if (!HostPart().IsMatch(value))
            {
                return (null, $"The template value '{name}' must be a host name or part of one (letters, digits, '-' and '.').");
            }
            merged[name] = value;
        }
        foreach (var name in values.Keys.Where(k => !definition.Template.ContainsKey(k)))
        {
            return (null, $"The {definition.Name} provider has no template value {Common.InputEcho.Quote(name)}.");
        }
        string Fill(string url) => Placeholder().Replace(url, m => merged[m.Groups[1].Value]);
        return (definition with
        {
            AuthorizeUrl = Fill(definition.AuthorizeUrl),
            TokenUrl = Fill(definition.TokenUrl),
            RevocationUrl = definition.RevocationUrl is null ? null : Fill(definition.RevocationUrl),
            UserinfoUrl = definition.UserinfoUrl is null ? null : Fill(definition.UserinfoUrl),
            ApiBaseUrl = definition.ApiBaseUrl is null ? null : Fill(definition.ApiBaseUrl),
            ApiHosts = [.. definition.ApiHosts.Select(Fill)],
        }, null);
    }

    [GeneratedRegex(@"\{([a-z_]+)\}")]
    private static partial Regex Placeholder();

    /// <summary>A host name or part of one: letters, digits, '-' and '.' (also what a definition's api_hosts must be).</summary>
    [GeneratedRegex(@"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")]
    internal static partial Regex HostPart();
}

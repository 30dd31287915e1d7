using System.Collections.Frozen;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Latchkey.Features.Broker.Providers;

/// <summary>
/// How to talk to one OAuth provider: its endpoints and quirks. Catalog entries ship in the
/// assembly (<c>catalog.json</c>); custom providers carry their own definition.
/// </summary>
public sealed record ProviderDefinition
{
    public string Key { get; init; } = "";
    public string Name { get; init; } = "";
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

    /// <summary>Values substituted into <c>{name}</c> placeholders of the URLs; null means required at creation.</summary>
    public Dictionary<string, string?> Template { get; init; } = [];
    public string? Notes { get; init; }

    public IEnumerable<string> Urls => new[] { AuthorizeUrl, TokenUrl, RevocationUrl, UserinfoUrl }.OfType<string>();
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
        }, null);
    }

    [GeneratedRegex(@"\{([a-z_]+)\}")]
    private static partial Regex Placeholder();

    [GeneratedRegex(@"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")]
    private static partial Regex HostPart();
}

using System.Collections.Frozen;
using Latchkey.Common;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Scopes;

/// <summary>One scope of the catalog: its wire name and, in plain words, what it grants.</summary>
public sealed class ScopeDefinition
{
    public string Name { get; set; } = "";
    public string Description { get; set; } = "";
}

/// <summary>
/// The scope catalog is configuration (<c>Scopes:Catalog</c>). When none is configured the
/// reference system's default catalog applies.
/// </summary>
public sealed class ScopeCatalogOptions
{
    public const string SectionName = "Scopes";

    public List<ScopeDefinition> Catalog { get; set; } = [];

    public static IReadOnlyList<ScopeDefinition> Defaults { get; } =
    [
        new() { Name = "IDENTITY", Description = "Read your user id, e-mail address and time zone" },
        new() { Name = "EXECUTE_GRAPH", Description = "Run agents" },
        new() { Name = "READ_GRAPH", Description = "Read agent run results" },
        new() { Name = "EXECUTE_BLOCK", Description = "Run individual blocks" },
        new() { Name = "READ_BLOCK", Description = "Read block definitions" },
        new() { Name = "READ_STORE", Description = "Access the agent store" },
        new() { Name = "USE_TOOLS", Description = "Use platform tools (MCP)" },
        new() { Name = "MANAGE_INTEGRATIONS", Description = "Create and update your integrations (third-party credentials)" },
        new() { Name = "READ_INTEGRATIONS", Description = "Read the status of your integrations" },
        new() { Name = "DELETE_INTEGRATIONS", Description = "Remove your integrations" },
        new() { Name = "READ_SECURITY_EVENTS", Description = "Read your account's security log: sign-ins, consents, tokens, API keys and credential use" },
    ];
}

internal sealed class ScopeCatalogOptionsValidator : IValidateOptions<ScopeCatalogOptions>
{
    public ValidateOptionsResult Validate(string? name, ScopeCatalogOptions options)
    {
        var failures = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < options.Catalog.Count; i++)
        {
            var scope = options.Catalog[i];
            if (!ScopeCatalog.IsValidScopeName(scope.Name))
            {
                failures.Add($"Scopes:Catalog:{i}:Name {InputEcho.Quote(scope.Name)} is not a valid scope name (letters, digits, '_', ':', '.', '-'; at most 64 characters).");
            }
            else if (!seen.Add(scope.Name))
            {
                failures.Add($"Scopes:Catalog:{i}:Name {InputEcho.Quote(scope.Name)} appears twice.");
            }
            if (string.IsNullOrWhiteSpace(scope.Description))
            {
                failures.Add($"Scopes:Catalog:{i}:Description is empty; every scope needs plain words for the consent page.");
            }
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

/// <summary>The scopes this deployment knows, and parsing of requested scope lists.</summary>
public sealed class ScopeCatalog
{
    private readonly FrozenDictionary<string, ScopeDefinition> _byName;

    public ScopeCatalog(IOptions<ScopeCatalogOptions> options)
    {
        var configured = options.Value.Catalog;
        All = configured.Count > 0 ? configured.ToArray() : ScopeCatalogOptions.Defaults;
        _byName = All.ToFrozenDictionary(s => s.Name, StringComparer.Ordinal);
    }

    public IReadOnlyList<ScopeDefinition> All { get; }

    public bool Contains(string scope) => _byName.ContainsKey(scope);

    public ScopeDefinition? Find(string scope) => _byName.GetValueOrDefault(scope);

    /// <summary>What a scope lets an app do, in words for the person asked to allow it.</summary>
    public string Describe(string scope) => scope switch
    {
        "openid" => "Sign you in with your Latchkey account",
        "profile" => "See your name and time zone",
        "email" => "See your e-mail address",
        "offline_access" => "Stay connected when you are not using it",
        _ => Find(scope)?.Description ?? scope,
    };

    /// <summary>
    /// Checks a requested list of scopes: every one known, none repeated, at least one.
    /// Returns the scopes in catalog order, or the problem in plain words.
    /// </summary>
    public bool TryNormalize(IEnumerable<string>? requested, out IReadOnlyList<string> scopes, out string? error)
    {
        scopes = [];
        var set = new HashSet<string>(StringComparer.Ordinal);
        foreach (var scope in requested ?? [])
        {
            if (scope is null || !_byName.ContainsKey(scope))
            {
                error = $"Unknown scope {InputEcho.Quote(scope)}. Known scopes: {string.Join(", ", All.Select(s => s.Name))}.";
                return false;
            }
            if (!set.Add(scope))
            {
                error = $"Scope {InputEcho.Quote(scope)} is listed twice.";
                return false;
            }
        }
        if (set.Count == 0)
        {
            error = "At least one scope is required.";
            return false;
        }
        scopes = All.Where(s => set.Contains(s.Name)).Select(s => s.Name).ToArray();
        error = null;
        return true;
    }

    internal static bool IsValidScopeName(string? name) =>
        !string.IsNullOrEmpty(name) && name.Length <= 64 &&
        name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or ':' or '.' or '-');
}

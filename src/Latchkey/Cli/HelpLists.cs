using Latchkey.Features.AuthorizationServer;
using Latchkey.Features.Broker.Providers;
using Latchkey.Features.Scopes;
using OidcScopes = OpenIddict.Abstractions.OpenIddictConstants.Scopes;

namespace Latchkey.Cli;

/// <summary>The lists that commands' <c>--help</c> ends with (<see cref="CliContext.AddHelpReference"/>).</summary>
internal static class HelpLists
{
    /// <summary>This server's scope catalog (<c>Scopes:Catalog</c>, or the built-in one), with what each allows.</summary>
    public static Func<IServiceProvider, TextWriter, Task> Scopes(bool withOpenIdScopes) => async (services, output) =>
    {
        var catalog = services.GetRequiredService<ScopeCatalog>();
        var names = catalog.All.Select(s => s.Name).ToList();
        if (withOpenIdScopes)
        {
            names.AddRange(AuthorizationServerSetup.OpenIdScopes.Where(s => s != OidcScopes.OfflineAccess));
        }
        await output.WriteLineAsync("Scopes (--scope; this server's catalog, also at GET /api/scopes):");
        await WriteRowsAsync(output, names.Select(name => (name, catalog.Describe(name))));
    };

    /// <summary>The provider catalog's keys, for <c>providers create --provider</c>.</summary>
    public static async Task Providers(IServiceProvider services, TextWriter output)
    {
        await output.WriteLineAsync("Providers (--provider; the built-in catalog, see 'providers catalog'):");
        await WriteRowsAsync(output, services.GetRequiredService<ProviderCatalog>().All
            .Select(p => (p.Key, p.Template.Count == 0 ? p.Name : $"{p.Name} (needs --template {string.Join(", ", p.Template.Keys.Select(k => k + "=..."))})"))
            .Append(("custom", "Any other OAuth 2.0 provider, from a definition file (--definition)")));
    }

    private static async Task WriteRowsAsync(TextWriter output, IEnumerable<(string Name, string Description)> rows)
    {
        var list = rows.ToList();
        var width = list.Max(r => r.Name.Length) + 2;
        foreach (var (name, description) in list)
        {
            await output.WriteLineAsync($"  {name.PadRight(width)}{description}");
        }
        await output.WriteLineAsync();
    }
}

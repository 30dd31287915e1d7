using System.Text.Json;
using Latchkey.Common;
using Latchkey.Features.Broker.Vault;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Broker.Providers;

/// <summary>What a caller sends to create or change a provider instance.</summary>
public sealed record ProviderRequest(
    string? Provider, string? ClientId, string? ClientSecret, string? Name,
    Dictionary<string, string>? Template, ProviderDefinition? Custom);

/// <summary>A provider instance as callers see it (never the secret).</summary>
public sealed record ProviderView(
    string Id, string Provider, string Name, string ClientId, string AuthorizeUrl, string TokenUrl, string? RevocationUrl,
    IReadOnlyList<string> DefaultScopes, bool Pkce, bool Refreshable, bool Global, DateTimeOffset CreatedAt,
    string AuthType, string? ApiBaseUrl, IReadOnlyList<string> ApiHosts, IReadOnlyList<string> CredentialFields);

/// <summary>Creating, finding and changing provider instances.</summary>
public sealed class ProviderService(
    LatchkeyDbContext db, ProviderCatalog catalog, SecretVault vault, IOptions<BrokerOptions> options, TimeProvider time, OutboundAddressGuard guard)
{
    public const string CustomKey = "custom";

    public static ProviderView View(ProviderInstance instance)
    {
        var definition = instance.Definition;
        return new ProviderView(instance.Id, instance.CatalogKey, instance.Name, instance.ClientId, definition.AuthorizeUrl, definition.TokenUrl,
            definition.RevocationUrl, definition.DefaultScopes, definition.Pkce, definition.Refreshable, instance.OwnerId is null, instance.CreatedAt,
            definition.AuthType, definition.ApiBaseUrl, definition.ProxyHosts, Credentials.CredentialMaterial.Fields(definition));
    }

    /// <summary>Providers the account may use: its own and the deployment's.</summary>
    public Task<List<ProviderInstance>> ListVisibleAsync(string accountId, CancellationToken cancellationToken) =>
        db.BrokerProviders.AsNoTracking().Where(p => p.OwnerId == null || p.OwnerId == accountId).OrderBy(p => p.Id).ToListAsync(cancellationToken);

    public Task<ProviderInstance?> FindVisibleAsync(string accountId, string id, CancellationToken cancellationToken) =>
        db.BrokerProviders.FirstOrDefaultAsync(p => p.Id == id && (p.OwnerId == null || p.OwnerId == accountId), cancellationToken);

    public async Task<(ProviderInstance? Created, string? Error)> CreateAsync(string? ownerId, ProviderRequest request, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(request.Provider))
        {
            return (null, $"Name the provider: one of {string.Join(", ", catalog.All.Select(p => p.Key))}, or '{CustomKey}' with a 'custom' definition.");
        }
        ProviderDefinition? definition;
        if (request.Provider == CustomKey)
        {
            if (request.Custom is null)
            {
                return (null, "A custom provider needs 'custom': its definition (docs/broker.md#custom-providers lists the fields).");
            }
            definition = request.Custom with { Key = CustomKey, Name = request.Name ?? request.Custom.Name, Template = [] };
        }
        else if (catalog.Find(request.Provider) is { } entry)
        {
            var (resolved, error) = ProviderCatalog.Resolve(entry, request.Template ?? []);
            if (resolved is null)
            {
                return (null, error);
            }
            definition = resolved;
        }
        else
        {
            return (null, $"Unknown provider {InputEcho.Quote(request.Provider)}. Known: {string.Join(", ", catalog.All.Select(p => p.Key))}, or '{CustomKey}'.");
        }
        if (ProviderDefinitionRules.Check(definition) is { } invalid)
        {
            return (null, invalid);
        }

        if (request.Name is { } wanted && (string.IsNullOrWhiteSpace(wanted) || wanted.Length > 100))
        {
            return (null, "name must have 1 to 100 characters.");
        }
        var oauthClient = AuthTypes.UsesOAuthClient(definition.AuthType);
        if (oauthClient && (string.IsNullOrWhiteSpace(request.ClientId) || string.IsNullOrWhiteSpace(request.ClientSecret) || request.ClientId.Length > 500 || request.ClientSecret.Length > 2000))
        {
            return (null, "client_id and client_secret, as registered with the provider, are required.");
        }
        if (!oauthClient && (request.ClientId is not null || request.ClientSecret is not null))
        {
            return (null, $"{definition.Name} takes {definition.AuthType} credentials, which each connection brings (POST /mcp/credentials); the provider has no client_id or client_secret.");
        }
        foreach (var url in definition.Urls)
        {
            if (await guard.CheckAsync(url, options.Value.AllowPrivateNetworks, cancellationToken) is { } problem)
            {
                return (null, problem + (options.Value.AllowPrivateNetworks ? "" : " (Broker:AllowPrivateNetworks permits private and loopback providers, and plain http.)"));
            }
        }

        var key = definition.Key;
        var id = await NextIdAsync($"provider_{key}_", cancellationToken);
        var now = time.GetUtcNow();
        var instance = new ProviderInstance
        {
            Id = id,
            CatalogKey = key,
            Name = string.IsNullOrWhiteSpace(request.Name) ? definition.Name : request.Name.Trim(),
            ClientId = request.ClientId?.Trim() ?? "",
            ClientSecretCiphertext = oauthClient ? await vault.EncryptAsync(request.ClientSecret!, SecretContext(id), cancellationToken) : "",
            DefinitionJson = JsonSerializer.Serialize(definition, ProviderCatalog.Json),
            TemplateJson = JsonSerializer.Serialize(request.Template ?? []),
            OwnerId = ownerId,
            CreatedAt = now,
            UpdatedAt = now,
        };
        db.BrokerProviders.Add(instance);
        await db.SaveChangesAsync(cancellationToken);
        return (instance, null);
    }

    /// <summary>Changes the name, client id or secret of a provider the account owns.</summary>
    public async Task<string?> UpdateAsync(ProviderInstance instance, ProviderRequest request, CancellationToken cancellationToken)
    {
        if (request.Provider is not null && request.Provider != instance.CatalogKey)
        {
            return "A provider instance cannot change its provider; create a new one.";
        }
        if (request.Name is { } name)
        {
            if (string.IsNullOrWhiteSpace(name) || name.Length > 100)
            {
                return "name must have 1 to 100 characters.";
            }
            instance.Name = name.Trim();
        }
        if ((request.ClientId ?? request.ClientSecret) is not null && !AuthTypes.UsesOAuthClient(instance.Definition.AuthType))
        {
            return "This provider has no client_id or client_secret: its credentials come with each connection.";
        }
        if (request.ClientId is { } clientId)
        {
            if (string.IsNullOrWhiteSpace(clientId) || clientId.Length > 500)
            {
                return "client_id must not be empty.";
            }
            instance.ClientId = clientId.Trim();
        }
        if (request.ClientSecret is { } secret)
        {
            if (string.IsNullOrWhiteSpace(secret) || secret.Length > 2000)
            {
                return "client_secret must not be empty.";
            }
            instance.ClientSecretCiphertext = await vault.EncryptAsync(secret, SecretContext(instance.Id), cancellationToken);
        }
        instance.UpdatedAt = time.GetUtcNow();
        await db.SaveChangesAsync(cancellationToken);
        return null;
    }

    public async Task DeleteAsync(ProviderInstance instance, CancellationToken cancellationToken)
    {
        db.BrokerProviders.Remove(instance);
        await db.SaveChangesAsync(cancellationToken);
    }

    /// <summary>The OAuth client secret; empty for providers whose credentials are typed in.</summary>
    public ValueTask<string> ClientSecretAsync(ProviderInstance instance, CancellationToken cancellationToken) =>
        instance.ClientSecretCiphertext.Length == 0 ? ValueTask.FromResult("") : vault.DecryptAsync(instance.ClientSecretCiphertext, SecretContext(instance.Id), cancellationToken);

    /// <summary>Creates the providers named in configuration that do not exist yet.</summary>
    public async Task EnsureConfiguredAsync(CancellationToken cancellationToken)
    {
        foreach (var configured in options.Value.Providers)
        {
            var exists = await db.BrokerProviders.AnyAsync(p => p.OwnerId == null && p.CatalogKey == configured.Catalog && p.ClientId == configured.ClientId, cancellationToken);
            if (!exists)
            {
                var (_, error) = await CreateAsync(null, new ProviderRequest(configured.Catalog, configured.ClientId, configured.ClientSecret, configured.Name, configured.Template, null), cancellationToken);
                if (error is not null)
                {
                    throw new InvalidOperationException($"Broker:Providers entry '{configured.Catalog}' is invalid: {error}");
                }
            }
        }
    }

    private static string SecretContext(string providerId) => $"provider:{providerId}:client_secret";

    /// <summary>Readable sequential ids (<c>provider_github_001</c>); a concurrent duplicate fails on the primary key.</summary>
    private async Task<string> NextIdAsync(string prefix, CancellationToken cancellationToken)
    {
        var existing = await db.BrokerProviders.Where(p => p.Id.StartsWith(prefix)).Select(p => p.Id).ToListAsync(cancellationToken);
        return BrokerIds.Next(prefix, existing);
    }
}

internal static class BrokerIds
{
    public static string Next(string prefix, IEnumerable<string> existing)
    {
        var highest = existing.Select(id => int.TryParse(id.AsSpan(prefix.Length), out var n) ? n : 0).DefaultIfEmpty(0).Max();
        return $"{prefix}{highest + 1:D3}";
    }
}

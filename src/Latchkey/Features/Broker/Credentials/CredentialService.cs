using Latchkey.Cluster;
using Latchkey.Common;
using Latchkey.Features.AgentApi;
using Latchkey.Features.Broker.Providers;
using Latchkey.Features.Broker.Vault;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Broker.Credentials;

/// <summary>A credential as callers see it: metadata, never tokens.</summary>
public sealed record CredentialView(
    string Id, string ProviderId, string Provider, string Status, IReadOnlyList<string> Scopes,
    string? ExternalAccountId, string? ExternalAccountLabel, DateTimeOffset? ExpiresAt,
    DateTimeOffset CreatedAt, DateTimeOffset? LastRefreshedAt, DateTimeOffset? LastUsedAt,
    string Kind, string? EndUserId, IReadOnlyList<string> Tags, DateTimeOffset? LastCheckedAt, string? LastCheckOutcome, string? LastError);

/// <summary>
/// A current credential, for a tool that needs one: the token (or key, or Basic's base64
/// <c>user:password</c>) and the headers an API call carries, in the provider's form.
/// </summary>
public sealed record AccessTokenResponse(string CredentialId, string AccessToken, string TokenType, DateTimeOffset? ExpiresAt, IReadOnlyDictionary<string, string> Headers);

/// <summary>A current credential with its provider's definition, and whether a new token could be had.</summary>
internal sealed record CurrentCredential(AccessTokenResponse Token, ProviderDefinition Definition, bool Refreshable);

/// <summary>Which of an account's credentials to list; every given field must match.</summary>
public sealed record CredentialFilter(string? EndUserId = null, string? Tag = null, string? ProviderId = null, string? Status = null);

/// <summary>Changes to a credential's metadata; a null field stays as it is.</summary>
public sealed record CredentialUpdateRequest(string? EndUserId, string[]? Tags, string? Label);

/// <summary>Reading, refreshing and deleting credentials.</summary>
public sealed class CredentialService(
    LatchkeyDbContext db,
    SecretVault vault,
    CredentialRefresher refresher,
    ProviderService providers,
    ProviderClient client,
    CredentialAudit audit,
    IOptions<BrokerOptions> options,
    TimeProvider time,
    SnapshotCache<Credential> cache,
    UsageStamps usage,
    ProviderApi api)
{
    private static readonly TimeSpan LastUsedResolution = TimeSpan.FromMinutes(1);

    public static CredentialView View(Credential credential) => new(
        credential.Id, credential.ProviderInstanceId, credential.ProviderKey, credential.Status,
        credential.Scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries), credential.ExternalAccountId, credential.ExternalAccountLabel,
        credential.ExpiresAt, credential.CreatedAt, credential.LastRefreshedAt, credential.LastUsedAt,
        credential.Kind, credential.EndUserId, CredentialTags.Decode(credential.Tags), credential.LastCheckedAt, credential.LastCheckOutcome, credential.LastError);

    public Task<List<Credential>> ListAsync(string accountId, CancellationToken cancellationToken) => ListAsync(accountId, new CredentialFilter(), cancellationToken);

    public Task<List<Credential>> ListAsync(string accountId, CredentialFilter filter, CancellationToken cancellationToken)
    {
        var query = db.BrokerCredentials.AsNoTracking().Where(c => c.AccountId == accountId);
        if (filter.EndUserId is { } endUser)
        {
            query = query.Where(c => c.EndUserId == endUser);
        }
        if (filter.Tag is { } tag)
        {
            var needle = CredentialTags.Needle(tag);
            query = query.Where(c => c.Tags.Contains(needle));
        }
        if (filter.ProviderId is { } providerId)
        {
            query = query.Where(c => c.ProviderInstanceId == providerId);
        }
        if (filter.Status is { } status)
        {
            query = query.Where(c => c.Status == status);
        }
        return query.OrderBy(c => c.CreatedAt).ThenBy(c => c.Id).ToListAsync(cancellationToken);
    }

    /// <summary>
    /// Stores a typed-in credential (API key, basic, bearer, headers), after trying it with the
    /// provider's test request unless <c>verify</c> is false; or, for a client-credentials provider,
    /// fetches the client's token.
    /// </summary>
    public async Task<Outcome<Credential>> CreateAsync(string accountId, CredentialCreateRequest request, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(request.ProviderId))
        {
            return AgentError.BadRequest("provider_id is required (GET /mcp/providers lists them).");
        }
        if (CredentialTags.Check(request.Tags) is { } badTags)
        {
            return AgentError.BadRequest(badTags);
        }
        if (request.EndUserId is { Length: 0 or > 200 } || request.Label is { Length: 0 or > 300 })
        {
            return AgentError.BadRequest("end_user_id must have 1 to 200 characters and label 1 to 300.");
        }
        var provider = await providers.FindVisibleAsync(accountId, request.ProviderId, cancellationToken);
        if (provider is null)
        {
            return AgentError.NotFound("provider", $"There is no provider {InputEcho.Quote(request.ProviderId)}.");
        }
        var definition = provider.Definition;
        if (definition.AuthType == AuthTypes.OAuth2)
        {
            return AgentError.BadRequest($"{provider.Name} ({provider.Id}) is an OAuth provider: a person connects it through /mcp/oauth/init (or a connect session).");
        }
        if (request.Scopes is not null && definition.AuthType != AuthTypes.ClientCredentials)
        {
            return AgentError.BadRequest("scopes apply to client_credentials providers only.");
        }
        if (definition.AuthType == AuthTypes.ClientCredentials && provider.OwnerId != accountId)
        {
            // The token would be the deployment's own client acting as itself: only the provider's owner may hold it.
            return AgentError.NotFound("provider", $"You have no client_credentials provider {InputEcho.Quote(provider.Id)} of your own; create one with your client's id and secret.");
        }
        if (request.Scopes is { } requested && (requested.Length > 100 || requested.Any(s => string.IsNullOrWhiteSpace(s) || s.Length > 300 || s.Any(char.IsWhiteSpace) || s.Any(char.IsControl))
                                                || string.Join(' ', requested).Length > 3000))
        {
            return AgentError.BadRequest("scopes must be an array of at most 100 scope names without spaces (3000 characters in all).");
        }

        var id = await CredentialIds.NextAsync(db, provider.CatalogKey, cancellationToken);
        var now = time.GetUtcNow();
        string secret;
        DateTimeOffset? expiresAt = null;
        var scopes = "";
        var tried = false;
        if (definition.AuthType == AuthTypes.ClientCredentials)
        {
            scopes = string.Join(' ', request.Scopes is { Length: > 0 } ? request.Scopes : definition.DefaultScopes);
            try
            {
                var tokens = await client.ClientCredentialsAsync(definition, provider.ClientId, await providers.ClientSecretAsync(provider, cancellationToken),
                    string.Join(definition.ScopeSeparator, scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries)), cancellationToken);
                secret = tokens.AccessToken;
                expiresAt = tokens.ExpiresIn is { } seconds ? now.AddSeconds(seconds) : null;
                scopes = Flows.FlowScopes.Normalize(string.IsNullOrWhiteSpace(tokens.Scope) ? scopes : tokens.Scope);
            }
            catch (ProviderCallException exception)
            {
                return AgentError.Provider(exception.Message);
            }
        }
        else
        {
            var (material, problem) = CredentialMaterial.FromRequest(definition, request);
            if (material is null)
            {
                return AgentError.BadRequest(problem!);
            }
            secret = material;
            if (request.Verify != false && definition.TestRequest is not null)
            {
                var probe = await api.TestAsync(definition, CredentialMaterial.Headers(definition, definition.AuthType, secret), cancellationToken);
                if (!probe.Works)
                {
                    return probe.Refused
                        ? new AgentError(StatusCodes.Status400BadRequest, "invalid_credential", $"{provider.Name} refused the credential: {probe.Message} Nothing was stored.")
                        : AgentError.Provider($"{probe.Message} Nothing was stored; send \"verify\": false to store it untried.");
                }
                tried = true;
            }
        }

        var credential = new Credential
        {
            Id = id,
            AccountId = accountId,
            ProviderInstanceId = provider.Id,
            ProviderKey = provider.CatalogKey,
            Kind = definition.AuthType,
            Scopes = scopes,
            ExternalAccountLabel = request.Label?.Trim(),
            EndUserId = request.EndUserId,
            Tags = CredentialTags.Encode(request.Tags),
            AccessTokenCiphertext = await vault.EncryptAsync(secret, AccessContext(id), cancellationToken),
            ExpiresAt = expiresAt,
            CreatedAt = now,
            LastCheckedAt = tried ? now : null,
            LastCheckOutcome = tried ? "ok" : null,
        };
        db.BrokerCredentials.Add(credential);
        await db.SaveChangesAsync(cancellationToken);
        await audit.RecordChangeAsync(credential, "created");
        return credential;
    }

    /// <summary>Changes a credential's end-user id, tags or label.</summary>
    public async Task<Outcome<Credential>> UpdateAsync(string accountId, string id, CredentialUpdateRequest request, CancellationToken cancellationToken)
    {
        if (CredentialTags.Check(request.Tags) is { } badTags)
        {
            return AgentError.BadRequest(badTags);
        }
        if (request.EndUserId is { Length: > 200 } || request.Label is { Length: > 300 })
        {
            return AgentError.BadRequest("end_user_id may have up to 200 characters and label up to 300 (an empty value clears it).");
        }
        var credential = await db.BrokerCredentials.FirstOrDefaultAsync(c => c.Id == id && c.AccountId == accountId, cancellationToken);
        if (credential is null)
        {
            return AgentError.NotFound("credential", $"You have no credential {InputEcho.Quote(id)}.");
        }
        if (request.EndUserId is { } endUser)
        {
            credential.EndUserId = endUser.Length == 0 ? null : endUser;
        }
        if (request.Tags is { } tags)
        {
            credential.Tags = CredentialTags.Encode(tags);
        }
        if (request.Label is { } label)
        {
            credential.ExternalAccountLabel = label.Trim().Length == 0 ? null : label.Trim();
        }
        await db.SaveChangesAsync(cancellationToken);
        return credential;
    }

    public Task<Credential?> FindAsync(string accountId, string id, CancellationToken cancellationToken) =>
        db.BrokerCredentials.AsNoTracking().FirstOrDefaultAsync(c => c.Id == id && c.AccountId == accountId, cancellationToken);

    /// <summary>
    /// The credential through a cache that every change to credentials invalidates (a refresh,
    /// a status change, a deletion). The instance is shared: callers must not change it.
    /// </summary>
    private async Task<Credential?> FindForReadAsync(string accountId, string id, CancellationToken cancellationToken)
    {
        var credential = await cache.GetOrLoadAsync(id, (db, id), static (state, ct) =>
            state.db.BrokerCredentials.AsNoTracking().Include(c => c.Provider).FirstOrDefaultAsync(c => c.Id == state.id, ct), cancellationToken);
        return credential?.AccountId == accountId ? credential : null;
    }

    /// <summary>
    /// A current access token: one indexed read and one decryption when the token is fresh;
    /// a (single-flight) refresh first when it expires within the margin.
    /// </summary>
    public async Task<Outcome<AccessTokenResponse>> AccessTokenAsync(string accountId, string id, CancellationToken cancellationToken)
    {
        var (current, error) = await CurrentAsync(accountId, id, "read", cancellationToken);
        return current is null ? error! : current.Token;
    }

    /// <summary>
    /// <see cref="AccessTokenAsync"/> with the credential's provider definition (the proxy needs its
    /// API base and hosts), audited as <paramref name="action"/>.
    /// </summary>
    internal async Task<Outcome<CurrentCredential>> CurrentAsync(string accountId, string id, string action, CancellationToken cancellationToken)
    {
        var credential = await FindForReadAsync(accountId, id, cancellationToken);
        if (credential is null)
        {
            return AgentError.NotFound("credential", $"You have no credential {InputEcho.Quote(id)}.");
        }
        if (credential.Status != CredentialStatus.Active)
        {
            audit.Record(credential.Id, accountId, action, credential.Status);
            return NeedsReauth(credential);
        }

        var now = time.GetUtcNow();
        if (credential.ExpiresAt is { } expiresAt && expiresAt - now <= CredentialRefresher.Margin(credential, options.Value))
        {
            if (!Refreshable(credential))
            {
                if (expiresAt <= now)
                {
                    audit.Record(credential.Id, accountId, action, "expired");
                    return AgentError.Conflict("needs_reauth", $"The token of credential {credential.Id} ({Instance(credential)}) has expired and cannot be refreshed; connect the account again.");
                }
            }
            else
            {
                var refreshed = await refresher.RefreshAsync(credential.Id, force: false, cancellationToken);
                if (refreshed.Error is not null)
                {
                    audit.Record(credential.Id, accountId, action, refreshed.Error.Error);
                    return refreshed.Error;
                }
                credential = refreshed.Value!;
            }
        }

        var secret = await vault.DecryptAsync(credential.AccessTokenCiphertext, AccessContext(credential.Id), cancellationToken);
        if (action != "health_check" && usage.ShouldRecord(credential.Id, now, LastUsedResolution))
        {
            await LastUseStamp.StampAsync(db, () => db.BrokerCredentials.Where(c => c.Id == credential.Id)
                .ExecuteUpdateAsync(s => s.SetProperty(c => c.LastUsedAt, now), cancellationToken));
        }
        if (action == "read")
        {
            // The proxy audits its call itself, with the request and the provider's answer.
            audit.Record(credential.Id, accountId, action);
        }
        var definition = credential.Provider?.Definition ?? new ProviderDefinition();
        return new CurrentCredential(
            new AccessTokenResponse(credential.Id, CredentialMaterial.Value(credential.Kind, secret), CredentialMaterial.TokenType(credential.Kind), credential.ExpiresAt,
                CredentialMaterial.Headers(definition, credential.Kind, secret)),
            definition, Refreshable(credential));
    }

    /// <summary>Whether a new token can be had without the person: a refresh token, or the client credentials grant.</summary>
    internal static bool Refreshable(Credential credential) => credential.RefreshTokenCiphertext is not null || credential.Kind == AuthTypes.ClientCredentials;

    public async Task<Outcome<Credential>> RefreshAsync(string accountId, string id, CancellationToken cancellationToken)
    {
        var credential = await FindAsync(accountId, id, cancellationToken);
        if (credential is null)
        {
            return AgentError.NotFound("credential", $"You have no credential {InputEcho.Quote(id)}.");
        }
        if (!Refreshable(credential))
        {
            return AgentError.Conflict("not_refreshable", $"The credential {credential.Id} ({Instance(credential)}) has no refresh token; its access token does not expire or must be re-authorized.");
        }
        return await refresher.RefreshAsync(id, force: true, cancellationToken);
    }

    /// <summary>Revokes the tokens at the provider where it can, then removes the credential.</summary>
    public async Task<bool> DeleteAsync(string accountId, string id, CancellationToken cancellationToken)
    {
        var credential = await db.BrokerCredentials.Include(c => c.Provider).FirstOrDefaultAsync(c => c.Id == id && c.AccountId == accountId, cancellationToken);
        if (credential is null)
        {
            return false;
        }
        var revoked = false;
        if (credential.Provider is { } provider && provider.Definition.RevocationUrl is not null && AuthTypes.UsesOAuthClient(credential.Kind))
        {
            var secret = await providers.ClientSecretAsync(provider, cancellationToken);
            var (token, hint) = credential.RefreshTokenCiphertext is { } refresh
                ? (await vault.DecryptAsync(refresh, RefreshContext(credential.Id), cancellationToken), "refresh_token")
                : (await vault.DecryptAsync(credential.AccessTokenCiphertext, AccessContext(credential.Id), cancellationToken), "access_token");
            revoked = await client.TryRevokeAsync(provider.Definition, provider.ClientId, secret, token, hint, cancellationToken);
        }
        db.BrokerCredentials.Remove(credential);
        await db.SaveChangesAsync(cancellationToken);
        credential.Status = CredentialStatus.Revoked;
        await audit.RecordChangeAsync(credential, "deleted", revoked ? "revoked at provider" : "removed");
        return true;
    }

    /// <summary>The secret's associated data: for OAuth the access token, for typed-in credentials the key or material.</summary>
    internal static string AccessContext(string credentialId) => $"credential:{credentialId}:access_token";

    internal static string RefreshContext(string credentialId) => $"credential:{credentialId}:refresh_token";

    internal static AgentError NeedsReauth(Credential credential) => AgentError.Conflict(CredentialStatus.NeedsReauth,
        $"The credential {credential.Id} ({Instance(credential)}) needs to be authorized again ({credential.LastError ?? credential.Status}); " +
        $"start a new flow with /mcp/oauth/init and provider_id {credential.ProviderInstanceId}.");

    /// <summary>The provider instance a credential belongs to, by name where loaded and always by id: a deployment may have several of one kind.</summary>
    internal static string Instance(Credential credential) =>
        credential.Provider is { } provider ? $"provider {provider.Name}, {provider.Id}" : $"provider {credential.ProviderInstanceId}";
}

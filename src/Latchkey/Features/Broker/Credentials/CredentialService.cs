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
    DateTimeOffset CreatedAt, DateTimeOffset? LastRefreshedAt, DateTimeOffset? LastUsedAt);

/// <summary>A current access token, for a tool that needs one.</summary>
public sealed record AccessTokenResponse(string CredentialId, string AccessToken, string TokenType, DateTimeOffset? ExpiresAt);

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
    UsageStamps usage)
{
    private static readonly TimeSpan LastUsedResolution = TimeSpan.FromMinutes(1);

    public static CredentialView View(Credential credential) => new(
        credential.Id, credential.ProviderInstanceId, credential.ProviderKey, credential.Status,
        credential.Scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries), credential.ExternalAccountId, credential.ExternalAccountLabel,
        credential.ExpiresAt, credential.CreatedAt, credential.LastRefreshedAt, credential.LastUsedAt);

    public Task<List<Credential>> ListAsync(string accountId, CancellationToken cancellationToken) =>
        db.BrokerCredentials.AsNoTracking().Where(c => c.AccountId == accountId).OrderBy(c => c.CreatedAt).ToListAsync(cancellationToken);

    public Task<Credential?> FindAsync(string accountId, string id, CancellationToken cancellationToken) =>
        db.BrokerCredentials.AsNoTracking().FirstOrDefaultAsync(c => c.Id == id && c.AccountId == accountId, cancellationToken);

    /// <summary>
    /// The credential through a cache that every change to credentials invalidates (a refresh,
    /// a status change, a deletion). The instance is shared: callers must not change it.
    /// </summary>
    private async Task<Credential?> FindForReadAsync(string accountId, string id, CancellationToken cancellationToken)
    {
        var credential = await cache.GetOrLoadAsync(id, (db, id), static (state, ct) =>
            state.db.BrokerCredentials.AsNoTracking().FirstOrDefaultAsync(c => c.Id == state.id, ct), cancellationToken);
        return credential?.AccountId == accountId ? credential : null;
    }

    /// <summary>
    /// A current access token: one indexed read and one decryption when the token is fresh;
    /// a (single-flight) refresh first when it expires within the margin.
    /// </summary>
    public async Task<Outcome<AccessTokenResponse>> AccessTokenAsync(string accountId, string id, CancellationToken cancellationToken)
    {
        var credential = await FindForReadAsync(accountId, id, cancellationToken);
        if (credential is null)
        {
            return AgentError.NotFound("credential", $"You have no credential {InputEcho.Quote(id)}.");
        }
        if (credential.Status != CredentialStatus.Active)
        {
            audit.Record(credential.Id, accountId, "read", credential.Status);
            return NeedsReauth(credential);
        }

        var now = time.GetUtcNow();
        if (credential.ExpiresAt is { } expiresAt && expiresAt - now <= CredentialRefresher.Margin(credential, options.Value))
        {
            if (credential.RefreshTokenCiphertext is null)
            {
                if (expiresAt <= now)
                {
                    audit.Record(credential.Id, accountId, "read", "expired");
                    return AgentError.Conflict("needs_reauth", $"The token of credential {credential.Id} ({Instance(credential)}) has expired and cannot be refreshed; connect the account again.");
                }
            }
            else
            {
                var refreshed = await refresher.RefreshAsync(credential.Id, force: false, cancellationToken);
                if (refreshed.Error is not null)
                {
                    audit.Record(credential.Id, accountId, "read", refreshed.Error.Error);
                    return refreshed.Error;
                }
                credential = refreshed.Value!;
            }
        }

        var token = await vault.DecryptAsync(credential.AccessTokenCiphertext, AccessContext(credential.Id), cancellationToken);
        if (usage.ShouldRecord(credential.Id, now, LastUsedResolution))
        {
            await LastUseStamp.StampAsync(db, () => db.BrokerCredentials.Where(c => c.Id == credential.Id)
                .ExecuteUpdateAsync(s => s.SetProperty(c => c.LastUsedAt, now), cancellationToken));
        }
        audit.Record(credential.Id, accountId, "read");
        return new AccessTokenResponse(credential.Id, token, "Bearer", credential.ExpiresAt);
    }

    public async Task<Outcome<Credential>> RefreshAsync(string accountId, string id, CancellationToken cancellationToken)
    {
        var credential = await FindAsync(accountId, id, cancellationToken);
        if (credential is null)
        {
            return AgentError.NotFound("credential", $"You have no credential {InputEcho.Quote(id)}.");
        }
        if (credential.RefreshTokenCiphertext is null)
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
        if (credential.Provider is { } provider && provider.Definition.RevocationUrl is not null)
        {
            var secret = await providers.ClientSecretAsync(provider, cancellationToken);
            var (token, hint) = credential.RefreshTokenCiphertext is { } refresh
                ? (await vault.DecryptAsync(refresh, RefreshContext(credential.Id), cancellationToken), "refresh_token")
                : (await vault.DecryptAsync(credential.AccessTokenCiphertext, AccessContext(credential.Id), cancellationToken), "access_token");
            revoked = await client.TryRevokeAsync(provider.Definition, provider.ClientId, secret, token, hint, cancellationToken);
        }
        db.BrokerCredentials.Remove(credential);
        await db.SaveChangesAsync(cancellationToken);
        audit.Record(id, accountId, "deleted", revoked ? "revoked at provider" : "removed");
        return true;
    }

    internal static string AccessContext(string credentialId) => $"credential:{credentialId}:access_token";

    internal static string RefreshContext(string credentialId) => $"credential:{credentialId}:refresh_token";

    internal static AgentError NeedsReauth(Credential credential) => AgentError.Conflict(CredentialStatus.NeedsReauth,
        $"The credential {credential.Id} ({Instance(credential)}) needs to be authorized again ({credential.LastError ?? credential.Status}); " +
        $"start a new flow with /mcp/oauth/init and provider_id {credential.ProviderInstanceId}.");

    /// <summary>The provider instance a credential belongs to, by name where loaded and always by id: a deployment may have several of one kind.</summary>
    internal static string Instance(Credential credential) =>
        credential.Provider is { } provider ? $"provider {provider.Name}, {provider.Id}" : $"provider {credential.ProviderInstanceId}";
}

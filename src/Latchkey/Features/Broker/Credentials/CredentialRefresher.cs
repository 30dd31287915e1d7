using System.Collections.Concurrent;
using Latchkey.Common;
using Latchkey.Features.AgentApi;
using Latchkey.Features.Broker.Providers;
using Latchkey.Features.Broker.Vault;
using Latchkey.Features.Telemetry;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Broker.Credentials;

/// <summary>
/// Refreshes credentials with at most one provider call per credential at a time: concurrent
/// readers on this node wait for the same refresh and share its result, and on PostgreSQL the
/// refresh holds the credential's row lock, so readers on other nodes wait for it too and then
/// find the new token instead of calling the provider again. A provider that rotates refresh
/// tokens has the new one saved in the same write as the new access token. A forced refresh that
/// finds a successful one younger than <c>Broker:ForcedRefreshCoalesceSeconds</c> (checked under the
/// row lock, so across nodes too) returns that one: a burst of forced refreshes makes one provider call.
/// </summary>
public sealed partial class CredentialRefresher(IServiceScopeFactory scopes, IOptions<BrokerOptions> options, TimeProvider time, CredentialAudit audit,
    LatchkeyMetrics metrics, ILogger<CredentialRefresher> logger)
{
    private readonly ConcurrentDictionary<string, Lazy<Task<Outcome<Credential>>>> _inFlight = new();

    /// <summary>
    /// The margin before expiry within which a read refreshes first: <c>Broker:RefreshMarginSeconds</c>,
    /// but at most half the token's lifetime, so that a token living 60 s is not refreshed on every read.
    /// </summary>
    public static TimeSpan Margin(Credential credential, BrokerOptions broker)
    {
        var configured = TimeSpan.FromSeconds(broker.RefreshMarginSeconds);
        if (credential.ExpiresAt is not { } expiresAt)
        {
            return configured;
        }
        var lifetime = expiresAt - (credential.LastRefreshedAt ?? credential.CreatedAt);
        return lifetime > TimeSpan.Zero && lifetime / 2 < configured ? lifetime / 2 : configured;
    }

    /// <summary>
    /// Refreshes the credential when <paramref name="force"/> is set or its token expires within
    /// its <see cref="Margin"/> plus <paramref name="beyondMargin"/> (the proactive refresh looks one
    /// run ahead); otherwise returns it as stored.
    /// </summary>
    public async Task<Outcome<Credential>> RefreshAsync(string credentialId, bool force, CancellationToken cancellationToken, TimeSpan beyondMargin = default)
    {
        var flight = _inFlight.GetOrAdd(credentialId, id => new Lazy<Task<Outcome<Credential>>>(() => RunAsync(id, force, beyondMargin)));
        try
        {
            return await flight.Value.WaitAsync(cancellationToken);
        }
        finally
        {
            _inFlight.TryRemove(new KeyValuePair<string, Lazy<Task<Outcome<Credential>>>>(credentialId, flight));
        }
    }

    // Not tied to any one caller's cancellation: the others waiting on it still want the result.
    private async Task<Outcome<Credential>> RunAsync(string credentialId, bool force, TimeSpan beyondMargin)
    {
        TraceTags.Credential(credentialId);
        await using var scope = scopes.CreateAsyncScope();
        var services = scope.ServiceProvider;
        var db = services.GetRequiredService<LatchkeyDbContext>();
        var vault = services.GetRequiredService<SecretVault>();
        await using var rowLock = await LockAsync(db, credentialId);
        if (!rowLock.Obtained)
        {
            return AgentError.Unavailable("Another node has been refreshing this credential for too long; try again shortly.");
        }
        var credential = await db.BrokerCredentials.Include(c => c.Provider).FirstOrDefaultAsync(c => c.Id == credentialId);
        if (credential?.Provider is not { } provider)
        {
            return AgentError.NotFound("credential", $"The credential {InputEcho.Quote(credentialId)} no longer exists.");
        }
        var now = time.GetUtcNow();
        if (!force && credential.ExpiresAt is { } expiresAt && expiresAt - now > Margin(credential, options.Value) + beyondMargin)
        {
            // Fresh: nothing to do, or another node refreshed it while this one waited for the lock.
            return credential;
        }
        if (force && credential.Status == CredentialStatus.Active && credential.LastRefreshedAt is { } last
            && now - last < TimeSpan.FromSeconds(options.Value.ForcedRefreshCoalesceSeconds))
        {
            // A forced refresh that arrives just after one succeeded (here or on another node) gets its result.
            return credential;
        }
        if (credential.Status != CredentialStatus.Active)
        {
            return CredentialService.NeedsReauth(credential);
        }
        if (!CredentialService.Refreshable(credential))
        {
            return AgentError.Conflict("not_refreshable", "The credential has no refresh token.");
        }

        var clientCredentials = credential.Kind == AuthTypes.ClientCredentials;
        var refreshToken = clientCredentials ? null : await vault.DecryptAsync(credential.RefreshTokenCiphertext!, CredentialService.RefreshContext(credential.Id));
        var secret = await services.GetRequiredService<ProviderService>().ClientSecretAsync(provider, CancellationToken.None);
        try
        {
            var providerClient = services.GetRequiredService<ProviderClient>();
            var definition = provider.Definition;
            // A client-credentials token is simply fetched again, for the scopes it was granted.
            var tokens = clientCredentials
                ? await providerClient.ClientCredentialsAsync(definition, provider.ClientId, secret, credential.Scopes.Replace(" ", definition.ScopeSeparator, StringComparison.Ordinal), CancellationToken.None)
                : await providerClient.RefreshAsync(definition, provider.ClientId, secret, refreshToken!, CancellationToken.None);
            // From here to the commit is the window in which a crash, or on PostgreSQL the loss of
            // the session that holds the row lock, loses a rotated refresh token the provider has
            // already issued: only encryption and one write, no other I/O.
            credential.AccessTokenCiphertext = await vault.EncryptAsync(tokens.AccessToken, CredentialService.AccessContext(credential.Id));
            if (tokens.RefreshToken is { } rotated && rotated != refreshToken)
            {
                credential.RefreshTokenCiphertext = await vault.EncryptAsync(rotated, CredentialService.RefreshContext(credential.Id));
            }
            credential.ExpiresAt = tokens.ExpiresIn is { } seconds ? now.AddSeconds(seconds) : null;
            if (!string.IsNullOrWhiteSpace(tokens.Scope))
            {
                credential.Scopes = Flows.FlowScopes.Normalize(tokens.Scope);
            }
            credential.LastRefreshedAt = now;
            credential.LastError = null;
            await SaveRefreshedAsync(db, rowLock, credential);
            await audit.RecordChangeAsync(credential, "refreshed");
            metrics.BrokerRefreshed(provider.Definition.Key, "refreshed");
            return credential;
        }
        catch (ProviderCallException exception)
        {
            // The stored tokens are left as they were; only the outcome is recorded.
            credential.LastError = Truncate(exception.Message);
            if (exception.Kind == ProviderFailureKind.InvalidGrant)
            {
                credential.Status = CredentialStatus.NeedsReauth;
            }
            await db.SaveChangesAsync();
            await rowLock.CommitAsync();
            await audit.RecordChangeAsync(credential, "refresh_failed", exception.Kind.ToString());
            metrics.BrokerRefreshed(provider.Definition.Key, exception.Kind == ProviderFailureKind.InvalidGrant ? "needs_reauth" : "failed");
            LogRefreshFailed(logger, credential.Id, exception.Kind);
            return exception.Kind == ProviderFailureKind.InvalidGrant ? CredentialService.NeedsReauth(credential) : AgentError.Provider(exception.Message);
        }
    }

    /// <summary>
    /// On PostgreSQL, a transaction holding the credential's row lock (<c>SELECT ... FOR UPDATE</c>),
    /// or <see cref="RowLock.NotObtained"/> when another node held it for longer than a refresh can take. PostgreSQL releases
    /// the lock when the holder's session ends, so a node that dies mid-refresh blocks no one.
    /// SQLite serves one node, whose single flight is enough; a transaction held across the
    /// provider call there would stop every other writer.
    /// </summary>
    private async Task<RowLock> LockAsync(LatchkeyDbContext db, string credentialId)
    {
        if (!db.Database.IsNpgsql())
        {
            return RowLock.NotNeeded;
        }
        var broker = options.Value;
        // Long enough for the holder's every attempt at the provider, with backoff.
        var lockTimeout = TimeSpan.FromSeconds(broker.ProviderTimeoutSeconds * broker.ProviderAttempts + 10);
        var transaction = await db.Database.BeginTransactionAsync();
        // The command must outlast the lock wait, or Npgsql's 30 s default cancels it first.
        db.Database.SetCommandTimeout(lockTimeout + TimeSpan.FromSeconds(5));
        try
        {
            var milliseconds = ((long)lockTimeout.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
            await db.Database.ExecuteSqlAsync($"SELECT set_config('lock_timeout', {milliseconds}, true)");
            await db.Database.ExecuteSqlAsync($"""SELECT 1 FROM broker_credentials WHERE "Id" = {credentialId} FOR UPDATE""");
            return new RowLock(transaction, Obtained: true);
        }
        catch (Npgsql.PostgresException exception) when (exception.SqlState == Npgsql.PostgresErrorCodes.LockNotAvailable)
        {
            await transaction.DisposeAsync();
            return RowLock.NotObtained;
        }
        catch
        {
            await transaction.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Saves refreshed tokens the provider has already issued (a rotating provider has revoked the
    /// old refresh token). When the session holding the row lock is lost before the commit, the
    /// values are written again on a new connection, without the lock, a few times: losing them
    /// would leave only a revoked refresh token.
    /// </summary>
    private async Task SaveRefreshedAsync(LatchkeyDbContext db, RowLock rowLock, Credential credential)
    {
        try
        {
            await db.SaveChangesAsync();
            await rowLock.CommitAsync();
            return;
        }
        catch (Exception exception) when (DatabaseUnavailable.Is(exception))
        {
            LogSaveRetried(logger, credential.Id, exception.GetType().Name);
        }
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var fresh = scope.ServiceProvider.GetRequiredService<LatchkeyDbContext>();
                await fresh.BrokerCredentials.Where(c => c.Id == credential.Id).ExecuteUpdateAsync(s => s
                    .SetProperty(c => c.AccessTokenCiphertext, credential.AccessTokenCiphertext)
                    .SetProperty(c => c.RefreshTokenCiphertext, credential.RefreshTokenCiphertext)
                    .SetProperty(c => c.ExpiresAt, credential.ExpiresAt)
                    .SetProperty(c => c.Scopes, credential.Scopes)
                    .SetProperty(c => c.LastRefreshedAt, credential.LastRefreshedAt)
                    .SetProperty(c => c.LastError, (string?)null));
                return;
            }
            catch (Exception exception) when (DatabaseUnavailable.Is(exception) && attempt < 5)
            {
                await Task.Delay(TimeSpan.FromSeconds(attempt));
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Saving the refreshed tokens of credential {CredentialId} failed ({Error}); writing them again on a new connection")]
    private static partial void LogSaveRetried(ILogger logger, string credentialId, string error);

    /// <summary>A credential's row lock: held (a transaction), not needed (SQLite: one node), or not obtained in time.</summary>
    private sealed record RowLock(IDbContextTransaction? Transaction, bool Obtained) : IAsyncDisposable
    {
        public static RowLock NotNeeded { get; } = new(null, Obtained: true);
        public static RowLock NotObtained { get; } = new(null, Obtained: false);

        public Task CommitAsync() => Transaction?.CommitAsync() ?? Task.CompletedTask;

        public ValueTask DisposeAsync() => Transaction?.DisposeAsync() ?? ValueTask.CompletedTask;
    }

    private static string Truncate(string value) => value.Length > 1000 ? value[..1000] : value;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refreshing credential {CredentialId} failed: {Kind}")]
    private static partial void LogRefreshFailed(ILogger logger, string credentialId, ProviderFailureKind kind);
}

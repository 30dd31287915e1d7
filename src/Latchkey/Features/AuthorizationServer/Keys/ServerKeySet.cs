using Latchkey.Cluster;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Server;

namespace Latchkey.Features.AuthorizationServer.Keys;

/// <summary>Gives OpenIddict the current keys whenever its options are built (first use, and after a rotation).</summary>
internal sealed class ServerKeyOptionsSetup(ServerKeySet keys, IOptions<AuthorizationServerOptions> settings) : IConfigureOptions<OpenIddictServerOptions>
{
    public void Configure(OpenIddictServerOptions options)
    {
        var (signing, encryption, tokenSigning) = keys.Current;
        if (!settings.Value.UsesJwtAccessTokens)
        {
            // OpenIddict puts symmetric keys first and signs every token but identity tokens with
            // the first key. With JWT access tokens, resource servers verify them with the
            // published RSA key, so HMAC is left out.
            foreach (var key in tokenSigning)
            {
                options.SigningCredentials.Add(new SigningCredentials(key, SecurityAlgorithms.HmacSha256));
            }
        }
        // Newest first: OpenIddict signs and encrypts with the first key and validates with all.
        // (Its sort keeps this order for keys of one type: few elements are insertion-sorted, which is stable.)
        foreach (var key in signing)
        {
            options.SigningCredentials.Add(new SigningCredentials(key, SecurityAlgorithms.RsaSha256));
        }
        foreach (var key in encryption)
        {
            options.EncryptionCredentials.Add(new EncryptingCredentials(key, SecurityAlgorithms.Aes256KW, SecurityAlgorithms.Aes256CbcHmacSha512));
        }
    }
}

/// <summary>
/// The keys in use, read from the database at first use and again when a key is added on any
/// node (<c>latchkey server-keys rotate</c>, announced to every node): OpenIddict's options are
/// then rebuilt, so every node signs with the new key and still validates with the previous one,
/// without a restart. The keys are read before the options are rebuilt, so a database that is
/// away at that moment delays the reload instead of breaking the token endpoint.
/// </summary>
internal sealed partial class ServerKeySet : IOptionsChangeTokenSource<OpenIddictServerOptions>, IDisposable
{
    private readonly IServiceScopeFactory _scopes;
    private readonly CacheRevisions _revisions;
    private readonly ILogger<ServerKeySet> _logger;
    private readonly Lock _loadLock = new();
    private Keys? _current;
    private CancellationTokenSource _changed = new();
    private int _reloadGeneration;

    internal sealed record Keys(IReadOnlyList<RsaSecurityKey> Signing, IReadOnlyList<SymmetricSecurityKey> Encryption, IReadOnlyList<SymmetricSecurityKey> TokenSigning);

    public ServerKeySet(IServiceScopeFactory scopes, CacheRevisions revisions, ILogger<ServerKeySet> logger)
    {
        _scopes = scopes;
        _revisions = revisions;
        _logger = logger;
        revisions.Invalidated += OnInvalidated;
    }

    public Keys Current
    {
        get
        {
            var keys = Volatile.Read(ref _current);
            if (keys is null)
            {
                lock (_loadLock)
                {
                    keys = _current ??= Load();
                }
            }
            return keys;
        }
    }

    /// <summary>Whether the keys have been read (at start, by <see cref="ServerKeyWarmUp"/>, or at first use).</summary>
    public bool IsLoaded => Volatile.Read(ref _current) is not null;

    public string? Name => Options.DefaultName;

    public Microsoft.Extensions.Primitives.IChangeToken GetChangeToken() =>
        new Microsoft.Extensions.Primitives.CancellationChangeToken(Volatile.Read(ref _changed).Token);

    public void Dispose()
    {
        _revisions.Invalidated -= OnInvalidated;
        // Stops a reload that is still retrying.
        Interlocked.Increment(ref _reloadGeneration);
        _changed.Dispose();
    }

    private Keys Load()
    {
        using var scope = _scopes.CreateScope();
        var (signing, encryption, tokenSigning) = scope.ServiceProvider.GetRequiredService<ServerKeyRing>().GetOrCreate();
        return new Keys(signing, encryption, tokenSigning);
    }

    private void OnInvalidated(CacheScope scope)
    {
        if (scope == CacheScope.ServerKeys && Volatile.Read(ref _current) is not null)
        {
            _ = ReloadAsync(Interlocked.Increment(ref _reloadGeneration));
        }
    }

    private async Task ReloadAsync(int generation)
    {
        // Off the announcing thread; retried while the database is away, unless a newer reload started.
        await Task.Yield();
        for (var attempt = 1; generation == Volatile.Read(ref _reloadGeneration); attempt++)
        {
            try
            {
                var keys = Load();
                lock (_loadLock)
                {
                    // A rotation announces each kind of key as it is added: only the newest reload publishes.
                    if (generation != Volatile.Read(ref _reloadGeneration))
                    {
                        return;
                    }
                    Volatile.Write(ref _current, keys);
                }
                Interlocked.Exchange(ref _changed, new CancellationTokenSource()).Cancel();
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (Exception exception)
            {
                if (attempt == 1)
                {
                    LogReloadFailed(_logger, exception.GetType().Name, exception.Message);
                }
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(attempt, 5)));
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reloading the authorization server keys failed ({Error}: {Message}); retrying")]
    private static partial void LogReloadFailed(ILogger logger, string error, string message);
}

/// <summary>
/// Loads the keys while the server starts. Otherwise the first requests, however many arrive at
/// once, queue behind one synchronous load (of the keys and, to unprotect them, of the Data
/// Protection key ring), holding a thread each. A database that is away at start only defers the
/// load to the first request that needs the keys.
/// </summary>
internal sealed partial class ServerKeyWarmUp(ServerKeySet keys, ILogger<ServerKeyWarmUp> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            await Task.Run(() => keys.Current, cancellationToken);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            LogDeferred(logger, exception.GetType().Name, exception.GetBaseException().Message);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Warning, Message = "The authorization server keys could not be loaded at start ({Error}: {Message}); the first request that needs them loads them")]
    private static partial void LogDeferred(ILogger logger, string error, string message);
}

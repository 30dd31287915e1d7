using Latchkey.Cluster;
using System.Security.Cryptography;
using Latchkey.Storage;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Server;

namespace Latchkey.Features.AuthorizationServer;

/// <summary>
/// A signing (RSA), token-signing (HMAC-SHA256) or token-encryption (AES-256) key of the
/// authorization server, generated once
/// and kept in the database so that every node signs and reads the same tokens. The material is
/// protected with ASP.NET Core Data Protection.
/// </summary>
public sealed class ServerKey
{
    public const string Signing = "signing";
    public const string Encryption = "encryption";

    /// <summary>
    /// Signs the payloads only Latchkey itself reads back (reference access and refresh tokens,
    /// codes): HMAC is far cheaper than RSA on the token endpoint. Identity tokens and JWT access
    /// tokens, which others verify against the published keys, stay RSA.
    /// </summary>
    public const string TokenSigning = "hmac";

    public required string Id { get; init; }
    public required string Kind { get; init; }
    public required string ProtectedMaterial { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
}

internal sealed class ServerKeyConfiguration : IEntityTypeConfiguration<ServerKey>
{
    public void Configure(EntityTypeBuilder<ServerKey> key)
    {
        key.ToTable("server_keys");
        key.HasKey(k => k.Id);
        key.Property(k => k.Id).HasMaxLength(64);
        key.Property(k => k.Kind).HasMaxLength(16).IsRequired();
        key.Property(k => k.ProtectedMaterial).IsRequired();
    }
}

/// <summary>Loads the server's keys, generating the first ones when there are none.</summary>
public sealed partial class ServerKeyRing(LatchkeyDbContext db, IDataProtectionProvider dataProtection, TimeProvider time, ILogger<ServerKeyRing> logger)
{
    private readonly IDataProtector _protector = dataProtection.CreateProtector("Latchkey.ServerKeys.v1");

    /// <summary>How many keys of each kind stay in use: the current one and the one it replaced, so tokens made before a rotation stay readable.</summary>
    public const int KeysKeptPerKind = 2;

    /// <summary>The keys in use, newest first; generates the first ones when there are none.</summary>
    public (IReadOnlyList<RsaSecurityKey> Signing, IReadOnlyList<SymmetricSecurityKey> Encryption, IReadOnlyList<SymmetricSecurityKey> TokenSigning) GetOrCreate()
    {
        EnsureExists(ServerKey.Signing, GenerateRsa);
        EnsureExists(ServerKey.Encryption, GenerateSymmetric);
        EnsureExists(ServerKey.TokenSigning, GenerateSymmetric);
        var signing = Load(ServerKey.Signing).Select(key =>
        {
            var rsa = RSA.Create();
            rsa.ImportPkcs8PrivateKey(key.Material, out _);
            return new RsaSecurityKey(rsa) { KeyId = key.Id };
        }).ToList();
        return (signing, LoadSymmetric(ServerKey.Encryption), LoadSymmetric(ServerKey.TokenSigning));
    }

    private List<SymmetricSecurityKey> LoadSymmetric(string kind) =>
        Load(kind).Select(key => new SymmetricSecurityKey(key.Material) { KeyId = key.Id }).ToList();

    /// <summary>Adds a new key of each kind; running nodes on PostgreSQL take them up at once (<see cref="ServerKeySet"/>).</summary>
    public (string SigningKeyId, string EncryptionKeyId, string TokenSigningKeyId) Rotate() =>
        (Insert(ServerKey.Signing, NextId(ServerKey.Signing), GenerateRsa()),
         Insert(ServerKey.Encryption, NextId(ServerKey.Encryption), GenerateSymmetric()),
         Insert(ServerKey.TokenSigning, NextId(ServerKey.TokenSigning), GenerateSymmetric()));

    private static byte[] GenerateRsa()
    {
        using var rsa = RSA.Create(2048);
        return rsa.ExportPkcs8PrivateKey();
    }

    private static byte[] GenerateSymmetric() => RandomNumberGenerator.GetBytes(32);

    private List<(string Id, byte[] Material)> Load(string kind) =>
        db.ServerKeys.AsNoTracking().Where(k => k.Kind == kind).OrderByDescending(k => k.Id).Take(KeysKeptPerKind).ToList()
            .Select(k => (k.Id, _protector.Unprotect(Convert.FromBase64String(k.ProtectedMaterial)))).ToList();

    private string NextId(string kind)
    {
        var newest = db.ServerKeys.AsNoTracking().Where(k => k.Kind == kind).OrderByDescending(k => k.Id).Select(k => k.Id).FirstOrDefault();
        var number = newest is null ? 0 : int.Parse(newest[(kind.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        return $"{kind}-{number + 1:D4}";
    }

    private void EnsureExists(string kind, Func<byte[]> generate)
    {
        if (db.ServerKeys.AsNoTracking().Any(k => k.Kind == kind))
        {
            return;
        }
        // A fixed id for the first key makes concurrent first starts of several nodes agree:
        // one insert wins, the others fail on the primary key and use the winner's key.
        try
        {
            Insert(kind, $"{kind}-0001", generate());
        }
        catch (DbUpdateException)
        {
            db.ChangeTracker.Clear();
        }
    }

    private string Insert(string kind, string id, byte[] material)
    {
        db.ServerKeys.Add(new ServerKey
        {
            Id = id,
            Kind = kind,
            ProtectedMaterial = Convert.ToBase64String(_protector.Protect(material)),
            CreatedAt = time.GetUtcNow(),
        });
        db.SaveChanges();
        LogGenerated(logger, kind, id);
        return id;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Generated the authorization server's {Kind} key {KeyId}")]
    private static partial void LogGenerated(ILogger logger, string kind, string keyId);
}

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

using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Latchkey.Common;
using Latchkey.Features.KeyProtection;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Latchkey.Features.Broker.Vault;

/// <summary>
/// A data key, stored wrapped (AES-256-GCM) by a master key. Secrets are encrypted with data keys;
/// rotating the master key re-wraps these few rows and leaves every secret untouched.
/// </summary>
public sealed class VaultDataKey
{
    public required string Id { get; init; }
    public required string MasterKeyId { get; set; }
    public required byte[] WrappedKey { get; set; }
    public DateTimeOffset CreatedAt { get; init; }
    public bool Active { get; set; }
}

internal sealed class VaultDataKeyConfiguration : IEntityTypeConfiguration<VaultDataKey>
{
    public void Configure(EntityTypeBuilder<VaultDataKey> key)
    {
        key.ToTable("vault_data_keys");
        key.HasKey(k => k.Id);
        key.Property(k => k.Id).HasMaxLength(40);
        key.Property(k => k.MasterKeyId).HasMaxLength(64);
    }
}

/// <summary>
/// AES-256-GCM encryption of third-party secrets under data keys named in each ciphertext
/// (<c>v1.{dataKeyId}.{base64(nonce|tag|ciphertext)}</c>). The associated data binds a ciphertext
/// to the record and field it belongs to, so a value copied into another row does not decrypt.
/// </summary>
public sealed class SecretVault(IServiceScopeFactory scopes, MasterKeys masterKeys, TimeProvider time) : IDisposable
{
    private readonly ConcurrentDictionary<string, byte[]> _dataKeys = new();
    private (string Id, byte[] Key)? _active;
    private readonly SemaphoreSlim _activeLock = new(1, 1);

    public void Dispose() => _activeLock.Dispose();

    public async Task<string> EncryptAsync(string plaintext, string context, CancellationToken cancellationToken = default)
    {
        var (id, key) = await ActiveDataKeyAsync(cancellationToken);
        var sealedData = AuthenticatedEncryption.Seal(key, Encoding.UTF8.GetBytes(plaintext), Encoding.UTF8.GetBytes(context));
        return $"v1.{id}.{Convert.ToBase64String(sealedData)}";
    }

    public async ValueTask<string> DecryptAsync(string ciphertext, string context, CancellationToken cancellationToken = default)
    {
        var parts = ciphertext.Split('.', 3);
        if (parts.Length != 3 || parts[0] != "v1")
        {
            throw new CryptographicException("Unknown vault ciphertext format.");
        }
        var key = await DataKeyAsync(parts[1], cancellationToken);
        return Open(key, parts[2], context);
    }

    /// <summary>Decrypts the base64 part of a <c>v1</c> ciphertext (nonce, tag, data) bound to <paramref name="context"/>.</summary>
    internal static string Open(byte[] key, string payload, string context) =>
        Encoding.UTF8.GetString(AuthenticatedEncryption.Open(key, Convert.FromBase64String(payload), Encoding.UTF8.GetBytes(context)));

    /// <summary>Re-wraps every data key under the active master key. Secrets themselves are not touched.</summary>
    public async Task<int> RewrapAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LatchkeyDbContext>();
        var rewrapped = 0;
        foreach (var dataKey in await db.VaultDataKeys.ToListAsync(cancellationToken))
        {
            if (dataKey.MasterKeyId == masterKeys.ActiveId)
            {
                continue;
            }
            var plain = Unwrap(dataKey);
            dataKey.WrappedKey = Wrap(plain, dataKey.Id, masterKeys.ActiveId);
            dataKey.MasterKeyId = masterKeys.ActiveId;
            rewrapped++;
        }
        await db.SaveChangesAsync(cancellationToken);
        return rewrapped;
    }

    private async ValueTask<byte[]> DataKeyAsync(string id, CancellationToken cancellationToken)
    {
        if (_dataKeys.TryGetValue(id, out var cached))
        {
            return cached;
        }
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LatchkeyDbContext>();
        var row = await db.VaultDataKeys.AsNoTracking().FirstOrDefaultAsync(k => k.Id == id, cancellationToken)
                  ?? throw new CryptographicException($"The vault data key '{id}' does not exist.");
        return _dataKeys.GetOrAdd(id, Unwrap(row));
    }

    private async ValueTask<(string Id, byte[] Key)> ActiveDataKeyAsync(CancellationToken cancellationToken)
    {
        if (_active is { } active)
        {
            return active;
        }
        await _activeLock.WaitAsync(cancellationToken);
        try
        {
            if (_active is { } again)
            {
                return again;
            }
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<LatchkeyDbContext>();
            var row = await db.VaultDataKeys.AsNoTracking().Where(k => k.Active).OrderByDescending(k => k.CreatedAt).FirstOrDefaultAsync(cancellationToken);
            if (row is null)
            {
                var plain = RandomNumberGenerator.GetBytes(32);
                var id = $"dk_{Convert.ToHexString(RandomNumberGenerator.GetBytes(8)).ToLowerInvariant()}";
                row = new VaultDataKey { Id = id, MasterKeyId = masterKeys.ActiveId, WrappedKey = Wrap(plain, id, masterKeys.ActiveId), CreatedAt = time.GetUtcNow(), Active = true };
                db.VaultDataKeys.Add(row);
                await db.SaveChangesAsync(cancellationToken);
            }
            var key = _dataKeys.GetOrAdd(row.Id, _ => Unwrap(row));
            _active = (row.Id, key);
            return _active.Value;
        }
        finally
        {
            _activeLock.Release();
        }
    }

    private byte[] Wrap(byte[] dataKey, string dataKeyId, string masterKeyId) =>
        AuthenticatedEncryption.Seal(masterKeys.Get(masterKeyId), dataKey, Encoding.UTF8.GetBytes(dataKeyId));

    private byte[] Unwrap(VaultDataKey row) =>
        AuthenticatedEncryption.Open(masterKeys.Get(row.MasterKeyId), row.WrappedKey, Encoding.UTF8.GetBytes(row.Id));
}

using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.Extensions.Options;

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

/// <summary>The master keys in force: from configuration, or from the generated development key file.</summary>
public sealed class MasterKeys
{
    private readonly Dictionary<string, byte[]> _keys;

    public MasterKeys(IOptions<VaultOptions> options)
    {
        var settings = options.Value;
        if (settings.MasterKeys.Count > 0)
        {
            _keys = settings.MasterKeys.ToDictionary(k => k.Key, k => Decode(k.Key, k.Value));
            ActiveId = settings.ActiveMasterKeyId ?? (_keys.Count == 1 ? _keys.Keys.Single()
                : throw new InvalidOperationException("Vault:ActiveMasterKeyId must name one of Vault:MasterKeys when several are configured."));
            if (!_keys.ContainsKey(ActiveId))
            {
                throw new InvalidOperationException($"Vault:ActiveMasterKeyId '{ActiveId}' is not among Vault:MasterKeys.");
            }
            KeyFile = null;
            return;
        }

        KeyFile = Path.GetFullPath(settings.KeyFile);
        var file = LoadOrCreateFile(KeyFile);
        _keys = file.Keys.ToDictionary(k => k.Key, k => Decode(k.Key, k.Value));
        ActiveId = file.Active;
    }

    public string ActiveId { get; private set; }

    /// <summary>The development key file in use, or null when keys come from configuration.</summary>
    public string? KeyFile { get; }

    public byte[] Get(string id) => _keys.TryGetValue(id, out var key)
        ? key
        : throw new CryptographicException($"The vault master key '{id}' is not configured; secrets wrapped by it cannot be read.");

    public bool Has(string id) => _keys.ContainsKey(id);

    /// <summary>Adds a new master key to the development key file and makes it active.</summary>
    public string AddToKeyFile()
    {
        if (KeyFile is null)
        {
            throw new InvalidOperationException("Master keys come from configuration: add the new key to Vault:MasterKeys and pass its id.");
        }
        string id;
        do
        {
            id = NewId();
        }
        while (_keys.ContainsKey(id));
        _keys[id] = RandomNumberGenerator.GetBytes(32);
        ActiveId = id;
        Save(KeyFile, new KeyFileContent(ActiveId, _keys.ToDictionary(k => k.Key, k => Convert.ToBase64String(k.Value))));
        return id;
    }

    public void Activate(string id)
    {
        if (!_keys.ContainsKey(id))
        {
            throw new InvalidOperationException($"There is no master key '{id}'.");
        }
        ActiveId = id;
    }

    private sealed record KeyFileContent(string Active, Dictionary<string, string> Keys);

    /// <summary>
    /// The time for people, and a random part so that two keys made in the same second never
    /// share an id: a new key under an existing id would replace it, and every data key wrapped
    /// by the old one would no longer open.
    /// </summary>
    private static string NewId() => $"mk-{DateTimeOffset.UtcNow:yyyyMMddHHmmss}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3))}";

    private static KeyFileContent LoadOrCreateFile(string path)
    {
        if (File.Exists(path))
        {
            return JsonSerializer.Deserialize<KeyFileContent>(File.ReadAllText(path))
                   ?? throw new InvalidOperationException($"The vault key file {path} is empty or damaged.");
        }
        var id = NewId();
        var content = new KeyFileContent(id, new() { [id] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)) });
        Save(path, content);
        return content;
    }

    private static void Save(string path, KeyFileContent content)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = path + ".tmp";
        File.WriteAllText(temporary, JsonSerializer.Serialize(content));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        File.Move(temporary, path, overwrite: true);
    }

    private static byte[] Decode(string id, string value)
    {
        try
        {
            var key = Convert.FromBase64String(value);
            return key.Length == 32 ? key : throw new FormatException();
        }
        catch (FormatException)
        {
            throw new InvalidOperationException($"Vault master key '{id}' must be base64 of exactly 32 bytes (openssl rand -base64 32).");
        }
    }
}

/// <summary>
/// AES-256-GCM encryption of third-party secrets under data keys named in each ciphertext
/// (<c>v1.{dataKeyId}.{base64(nonce|tag|ciphertext)}</c>). The associated data binds a ciphertext
/// to the record and field it belongs to, so a value copied into another row does not decrypt.
/// </summary>
public sealed class SecretVault(IServiceScopeFactory scopes, MasterKeys masterKeys, TimeProvider time) : IDisposable
{
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private readonly ConcurrentDictionary<string, byte[]> _dataKeys = new();
    private (string Id, byte[] Key)? _active;
    private readonly SemaphoreSlim _activeLock = new(1, 1);

    public void Dispose() => _activeLock.Dispose();

    public async Task<string> EncryptAsync(string plaintext, string context, CancellationToken cancellationToken = default)
    {
        var (id, key) = await ActiveDataKeyAsync(cancellationToken);
        var plain = System.Text.Encoding.UTF8.GetBytes(plaintext);
        var output = new byte[NonceSize + TagSize + plain.Length];
        var nonce = output.AsSpan(0, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(key, TagSize);
        aes.Encrypt(nonce, plain, output.AsSpan(NonceSize + TagSize), output.AsSpan(NonceSize, TagSize), System.Text.Encoding.UTF8.GetBytes(context));
        return $"v1.{id}.{Convert.ToBase64String(output)}";
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
    internal static string Open(byte[] key, string payload, string context)
    {
        var data = Convert.FromBase64String(payload);
        var plain = new byte[data.Length - NonceSize - TagSize];
        using var aes = new AesGcm(key, TagSize);
        aes.Decrypt(data.AsSpan(0, NonceSize), data.AsSpan(NonceSize + TagSize), data.AsSpan(NonceSize, TagSize), plain, System.Text.Encoding.UTF8.GetBytes(context));
        return System.Text.Encoding.UTF8.GetString(plain);
    }

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

    private byte[] Wrap(byte[] dataKey, string dataKeyId, string masterKeyId)
    {
        var output = new byte[NonceSize + TagSize + dataKey.Length];
        RandomNumberGenerator.Fill(output.AsSpan(0, NonceSize));
        using var aes = new AesGcm(masterKeys.Get(masterKeyId), TagSize);
        aes.Encrypt(output.AsSpan(0, NonceSize), dataKey, output.AsSpan(NonceSize + TagSize), output.AsSpan(NonceSize, TagSize), System.Text.Encoding.UTF8.GetBytes(dataKeyId));
        return output;
    }

    private byte[] Unwrap(VaultDataKey row)
    {
        var data = row.WrappedKey;
        var plain = new byte[data.Length - NonceSize - TagSize];
        using var aes = new AesGcm(masterKeys.Get(row.MasterKeyId), TagSize);
        aes.Decrypt(data.AsSpan(0, NonceSize), data.AsSpan(NonceSize + TagSize), data.AsSpan(NonceSize, TagSize), plain, System.Text.Encoding.UTF8.GetBytes(row.Id));
        return plain;
    }
}

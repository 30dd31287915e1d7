using System.Security.Cryptography;

namespace Latchkey.Features.KeyProtection;

/// <summary>Master keys as a provider hands them over: 256-bit keys by id, and the id of the one that encrypts new data.</summary>
public sealed record MasterKeyMaterial(IReadOnlyDictionary<string, byte[]> Keys, string ActiveId);

/// <summary>
/// Where the master keys come from. Latchkey has two (configuration and the key file); a
/// deployment that keeps its keys in a KMS or a secret manager registers its own
/// (<c>services.AddSingleton&lt;IMasterKeyProvider, MyKms&gt;()</c>, before the features are added)
/// and it wins over both. Keys are read at first use and again when a ciphertext names a key this
/// process has not seen (another node or the CLI rotated), so a provider should answer from its
/// source each time.
/// </summary>
public interface IMasterKeyProvider
{
    /// <summary>Where the keys come from, for people ("the key file /etc/latchkey/keys.json").</summary>
    string Source { get; }

    MasterKeyMaterial Load();
}

/// <summary>A provider that can add a key itself (the key file); the others rotate outside Latchkey.</summary>
public interface IMasterKeyGenerator
{
    /// <summary>Adds a new key, makes it the active one and returns its id.</summary>
    string AddKey();
}

/// <summary>A master key that is needed is not there: configuration to fix, not a bug.</summary>
public sealed class MasterKeyUnavailableException(string message) : CryptographicException(message);

/// <summary>The master keys in force, from the one <see cref="IMasterKeyProvider"/> in use.</summary>
public sealed class MasterKeys
{
    // A ciphertext naming an unknown key re-reads the provider, but not more often than this.
    private static readonly TimeSpan ReloadInterval = TimeSpan.FromSeconds(2);

    private readonly IMasterKeyProvider _provider;
    private readonly Lock _reloadLock = new();
    private MasterKeyMaterial _material;
    private long _lastReload;
    private string? _activated;

    public MasterKeys(IMasterKeyProvider provider)
    {
        _provider = provider;
        _material = Checked(provider.Load());
        _lastReload = long.MinValue / 2;
    }

    /// <summary>The key that encrypts new data.</summary>
    public string ActiveId => _activated ?? Volatile.Read(ref _material).ActiveId;

    /// <summary>Where the keys come from, for messages.</summary>
    public string Source => _provider.Source;

    public IMasterKeyProvider Provider => _provider;

    public byte[] Get(string id) => Find(id) ??
        throw new MasterKeyUnavailableException(
            $"The master key '{id}' is not available from {Source}; what it encrypted cannot be read. " +
            "Give this server the same master keys as the server that wrote the data (docs/operations.md#master-keys).");

    public bool Has(string id) => Find(id) is not null;

    /// <summary>Adds a key through the provider and makes it active, when the provider can.</summary>
    public string AddKey()
    {
        if (_provider is not IMasterKeyGenerator generator)
        {
            throw new InvalidOperationException(
                $"Master keys come from {Source}: add the new key there (for example Vault:MasterKeys:<id>), then rotate with --to <id>.");
        }
        var id = generator.AddKey();
        Reload(force: true);
        _activated = null;
        return id;
    }

    /// <summary>Makes a key the provider already has the active one in this process (a rotation to a configured key).</summary>
    public void Activate(string id)
    {
        if (!Has(id))
        {
            throw new InvalidOperationException($"There is no master key '{id}' in {Source}.");
        }
        _activated = id;
    }

    private byte[]? Find(string id)
    {
        if (Volatile.Read(ref _material).Keys.TryGetValue(id, out var key))
        {
            return key;
        }
        Reload(force: false);
        return Volatile.Read(ref _material).Keys.GetValueOrDefault(id);
    }

    private void Reload(bool force)
    {
        lock (_reloadLock)
        {
            if (!force && Environment.TickCount64 - _lastReload < ReloadInterval.TotalMilliseconds)
            {
                return;
            }
            _lastReload = Environment.TickCount64;
            Volatile.Write(ref _material, Checked(_provider.Load()));
        }
    }

    private MasterKeyMaterial Checked(MasterKeyMaterial material)
    {
        foreach (var (id, key) in material.Keys)
        {
            if (key.Length != 32)
            {
                throw new MasterKeyUnavailableException($"The master key '{id}' from {Source} is {key.Length} bytes; master keys are 32 bytes (AES-256).");
            }
        }
        if (!material.Keys.ContainsKey(material.ActiveId))
        {
            throw new MasterKeyUnavailableException($"The active master key '{material.ActiveId}' is not among the keys from {Source}.");
        }
        return material;
    }

    /// <summary>A 32-byte key from its base64 form, or an error that says how to make one.</summary>
    internal static byte[] Decode(string id, string? value, string where)
    {
        try
        {
            var key = Convert.FromBase64String(value ?? "");
            return key.Length == 32 ? key : throw new FormatException();
        }
        catch (FormatException)
        {
            throw new MasterKeyUnavailableException($"The master key '{id}' in {where} must be base64 of exactly 32 bytes (openssl rand -base64 32).");
        }
    }

    /// <summary>
    /// The time for people, and a random part so that two keys made in the same second never
    /// share an id: a new key under an existing id would replace it, and every data key wrapped
    /// by the old one would no longer open.
    /// </summary>
    internal static string NewId() => $"mk-{DateTimeOffset.UtcNow:yyyyMMddHHmmss}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3))}";
}

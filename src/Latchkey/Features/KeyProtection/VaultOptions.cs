namespace Latchkey.Features.KeyProtection;

/// <summary>
/// The master keys that protect everything else at rest: the Data Protection key ring (and with
/// it the server's signing keys and session cookies) and the broker vault's data keys. Bound from
/// the <c>Vault</c> section. Keys come, in this order, from an <see cref="IMasterKeyProvider"/>
/// registered in code (a KMS), from <c>Vault:MasterKeys:{id}</c> (configuration or the environment,
/// <c>LATCHKEY_Vault__MasterKeys__{id}</c>), or from a key file.
/// </summary>
public sealed class VaultOptions
{
    public const string SectionName = "Vault";

    /// <summary>The key file's name, beside the database in development and in the user's configuration folder otherwise.</summary>
    public const string KeyFileName = "vault-master-keys.json";

    /// <summary>Where releases before the key ring was encrypted generated the key file; a file there is still used.</summary>
    public static readonly string LegacyKeyFile = Path.Combine("data", KeyFileName);

    /// <summary>Master keys by id, base64-encoded 256-bit values (<c>openssl rand -base64 32</c>).</summary>
    public Dictionary<string, string> MasterKeys { get; set; } = [];

    /// <summary>Which master key encrypts new data. Defaults to the only configured one.</summary>
    public string? ActiveMasterKeyId { get; set; }

    /// <summary>
    /// The key file used when no master key is configured. Unset: <c>data/vault-master-keys.json</c>
    /// in Development (or where an earlier release made it), otherwise
    /// <c>$XDG_CONFIG_HOME/latchkey/vault-master-keys.json</c> (<c>~/.config/latchkey/…</c>), away
    /// from the database and its backups.
    /// </summary>
    public string? KeyFile { get; set; }

    /// <summary>
    /// Never generate a master key: a server without one (no provider, no configured key, no key
    /// file) refuses to start. Turn it on for production, so that a lost key file or a missing
    /// variable is an error and not a new, empty vault.
    /// </summary>
    public bool RequireMasterKey { get; set; }
}

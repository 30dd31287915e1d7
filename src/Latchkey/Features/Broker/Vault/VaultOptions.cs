namespace Latchkey.Features.Broker.Vault;

/// <summary>
/// Master keys of the credential vault. Bound from the <c>Vault</c> section. In production set
/// <c>Vault:MasterKeys:{id}</c> (base64 of 32 random bytes) and <c>Vault:ActiveMasterKeyId</c>;
/// without them a key file is generated under <c>./data</c> (development default).
/// </summary>
public sealed class VaultOptions
{
    public const string SectionName = "Vault";

    /// <summary>Master keys by id, base64-encoded 256-bit values.</summary>
    public Dictionary<string, string> MasterKeys { get; set; } = [];

    /// <summary>Which master key wraps new data keys. Defaults to the only configured one.</summary>
    public string? ActiveMasterKeyId { get; set; }

    /// <summary>Key file used when no master key is configured.</summary>
    public string KeyFile { get; set; } = "data/vault-master-keys.json";
}

using System.Security.Cryptography;
using System.Text.Json;
using Latchkey.Common;

namespace Latchkey.Features.KeyProtection;

/// <summary>Master keys from <c>Vault:MasterKeys</c>: configuration files, or the environment (<c>LATCHKEY_Vault__MasterKeys__{id}</c>).</summary>
public sealed class ConfiguredMasterKeys(VaultOptions options) : IMasterKeyProvider
{
    public string Source => "Vault:MasterKeys in the configuration";

    public MasterKeyMaterial Load()
    {
        var keys = options.MasterKeys.ToDictionary(k => k.Key, k => MasterKeys.Decode(k.Key, k.Value, $"Vault:MasterKeys:{k.Key}"));
        var active = options.ActiveMasterKeyId ?? (keys.Count == 1
            ? keys.Keys.Single()
            : throw new MasterKeyUnavailableException("Vault:ActiveMasterKeyId must name one of Vault:MasterKeys when several are configured."));
        return new MasterKeyMaterial(keys, active);
    }
}

/// <summary>
/// Master keys in a JSON file (<c>{"Active": id, "Keys": {id: base64}}</c>) that only its owner may
/// read. Generated on first use unless <see cref="VaultOptions.RequireMasterKey"/> is on; a file a
/// deployment mounts (a secret volume) works the same way.
/// </summary>
public sealed partial class MasterKeyFile(string path, bool mayGenerate, ILogger<MasterKeyFile> logger) : IMasterKeyProvider, IMasterKeyGenerator
{

    /// <summary>The full path of the file.</summary>
    public string FilePath { get; } = Path.GetFullPath(path);

    /// <summary>Whether this process made the file (a first start).</summary>
    public bool Generated { get; private set; }

    public string Source => $"the key file {FilePath}";

    /// <summary>
    /// The key file in use when none is configured: where an earlier release made it, if it is
    /// there; beside the database in Development; otherwise in the user's configuration folder,
    /// so that the database folder and its backups do not carry the key.
    /// </summary>
    public static string Resolve(VaultOptions options, IHostEnvironment environment)
    {
        if (!string.IsNullOrWhiteSpace(options.KeyFile))
        {
            return Path.GetFullPath(options.KeyFile);
        }
        if (File.Exists(VaultOptions.LegacyKeyFile) || environment.IsDevelopment())
        {
            return Path.GetFullPath(VaultOptions.LegacyKeyFile);
        }
        var configuration = Environment.GetFolderPath(Environment.SpecialFolder.ApplicationData, Environment.SpecialFolderOption.DoNotVerify);
        if (string.IsNullOrEmpty(configuration))
        {
            throw new MasterKeyUnavailableException(
                "There is no home or configuration folder for the generated vault key file: set Vault:KeyFile to a path, or give the keys in Vault:MasterKeys.");
        }
        return Path.Combine(configuration, "latchkey", VaultOptions.KeyFileName);
    }

    public MasterKeyMaterial Load()
    {
        if (!File.Exists(FilePath))
        {
            if (!mayGenerate)
            {
                throw new MasterKeyUnavailableException(
                    $"The vault key file {FilePath} does not exist, and Vault:RequireMasterKey forbids making a new one. " +
                    "Put the key file back, or give the keys in Vault:MasterKeys.");
            }
            var id = MasterKeys.NewId();
            Save(new MasterKeyFileContent(id, new() { [id] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)) }));
            Generated = true;
            LogGenerated(logger, FilePath);
        }
        if (OwnerOnlyFiles.Restrict(FilePath))
        {
            LogRestricted(logger, FilePath);
        }
        else if (OwnerOnlyFiles.IsOpenToOthers(FilePath))
        {
            LogOpenToOthers(logger, FilePath);
        }
        var content = Read();
        var keys = content.Keys.ToDictionary(k => k.Key, k => MasterKeys.Decode(k.Key, k.Value, FilePath));
        return new MasterKeyMaterial(keys, content.Active);
    }

    public string AddKey()
    {
        var content = Read();
        string id;
        do
        {
            id = MasterKeys.NewId();
        }
        while (content.Keys.ContainsKey(id));
        content.Keys[id] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        Save(content with { Active = id });
        return id;
    }

    private MasterKeyFileContent Read()
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllText(FilePath), MasterKeyFileJson.Default.MasterKeyFileContent) is { Active: not null, Keys: not null } content
                ? content
                : throw new JsonException();
        }
        catch (JsonException)
        {
            throw new MasterKeyUnavailableException($"The vault key file {FilePath} is empty or damaged.");
        }
    }

    private void Save(MasterKeyFileContent content)
    {
        OwnerOnlyFiles.CreateDirectory(Path.GetDirectoryName(FilePath)!);
        // Written beside and renamed into place, so that a crash never leaves half a key file.
        var temporary = FilePath + ".tmp";
        File.Delete(temporary);
        OwnerOnlyFiles.CreateFile(temporary);
        File.WriteAllText(temporary, JsonSerializer.Serialize(content, MasterKeyFileJson.Default.MasterKeyFileContent));
        File.Move(temporary, FilePath, overwrite: true);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Generated a vault master key in {KeyFile}")]
    private static partial void LogGenerated(ILogger logger, string keyFile);

    [LoggerMessage(Level = LogLevel.Information, Message = "Made the vault key file {KeyFile} readable by its owner only (0600)")]
    private static partial void LogRestricted(ILogger logger, string keyFile);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The vault key file {KeyFile} is readable by other accounts and could not be changed: chmod 600 it")]
    private static partial void LogOpenToOthers(ILogger logger, string keyFile);
}

/// <summary>The key file's content: <c>{"Active": id, "Keys": {id: base64}}</c>.</summary>
internal sealed record MasterKeyFileContent(string Active, Dictionary<string, string> Keys);

/// <summary>
/// The key file's JSON, generated at build time: every CLI command reads the file, and building
/// the serializer's metadata by reflection was a noticeable part of a command's start.
/// </summary>
[System.Text.Json.Serialization.JsonSerializable(typeof(MasterKeyFileContent))]
internal sealed partial class MasterKeyFileJson : System.Text.Json.Serialization.JsonSerializerContext;

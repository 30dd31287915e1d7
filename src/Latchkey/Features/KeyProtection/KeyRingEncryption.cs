using System.Text;
using System.Xml.Linq;
using Latchkey.Common;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.AspNetCore.DataProtection.XmlEncryption;

namespace Latchkey.Features.KeyProtection;

/// <summary>
/// The shape of a Data Protection key element encrypted under a master key:
/// <c>&lt;masterKeyEncrypted masterKeyId="mk-…"&gt;base64(nonce | tag | ciphertext)&lt;/masterKeyEncrypted&gt;</c>,
/// AES-256-GCM with the master key id as associated data. Data Protection wraps it in its own
/// <c>&lt;encryptedSecret decryptorType="…KeyRingDecryptor…"&gt;</c>.
/// </summary>
internal static class KeyRingCiphertext
{
    public static readonly XName ElementName = XName.Get("masterKeyEncrypted", "urn:latchkey:key-ring:v1");
    public const string MasterKeyIdAttribute = "masterKeyId";

    // Data Protection's own names (Microsoft.AspNetCore.DataProtection XmlConstants), for the rows it wrote.
    private const string DataProtectionNamespace = "http://schemas.asp.net/2015/03/dataProtection";
    public static readonly XName EncryptedSecret = XName.Get("encryptedSecret", DataProtectionNamespace);
    public static readonly XName RequiresEncryption = XName.Get("requiresEncryption", DataProtectionNamespace);
    public const string DecryptorTypeAttribute = "decryptorType";

    public static XElement Seal(XElement plaintext, MasterKeys masterKeys)
    {
        var id = masterKeys.ActiveId;
        var sealedData = AuthenticatedEncryption.Seal(masterKeys.Get(id), Encoding.UTF8.GetBytes(plaintext.ToString(SaveOptions.DisableFormatting)), AssociatedData(id));
        return new XElement(ElementName, new XAttribute(MasterKeyIdAttribute, id), Convert.ToBase64String(sealedData));
    }

    public static XElement Open(XElement encrypted, MasterKeys masterKeys)
    {
        var id = MasterKeyIdOf(encrypted) ?? throw new System.Security.Cryptography.CryptographicException("The key ring element names no master key.");
        var plaintext = AuthenticatedEncryption.Open(masterKeys.Get(id), Convert.FromBase64String(encrypted.Value), AssociatedData(id));
        return XElement.Parse(Encoding.UTF8.GetString(plaintext));
    }

    public static string? MasterKeyIdOf(XElement encrypted) =>
        encrypted.Name == ElementName ? encrypted.Attribute(MasterKeyIdAttribute)?.Value : null;

    /// <summary>Our ciphertexts inside a key element, each with the <c>encryptedSecret</c> around it.</summary>
    public static IEnumerable<(XElement Secret, XElement Ciphertext)> SealedParts(XElement key) =>
        key.Descendants(EncryptedSecret)
            .Select(secret => (Secret: secret, Ciphertext: secret.Elements(ElementName).FirstOrDefault()))
            .Where(part => part.Ciphertext is not null)!;

    /// <summary>Parts Data Protection marks as secret that are still in plain text (written before the ring was encrypted).</summary>
    public static List<XElement> PlaintextParts(XElement key) =>
        key.Descendants()
            .Where(element => element.Attribute(RequiresEncryption) is { } marked && bool.TryParse(marked.Value, out var required) && required)
            .Where(element => !element.Ancestors(EncryptedSecret).Any())
            .ToList();

    /// <summary>The <c>encryptedSecret</c> element Data Protection itself would write for <paramref name="plaintext"/>.</summary>
    public static XElement EncryptedSecretFor(XElement plaintext, MasterKeys masterKeys) =>
        new(EncryptedSecret,
            new XAttribute(DecryptorTypeAttribute, typeof(KeyRingDecryptor).AssemblyQualifiedName!),
            Seal(new XElement(plaintext), masterKeys));

    public static MasterKeyUnavailableException MissingMasterKey(string id, MasterKeys masterKeys) => new(
        $"The Data Protection key ring is encrypted under the master key '{id}', which {masterKeys.Source} does not have. " +
        "Start this server with the master keys of the servers that share its database (the same Vault:MasterKeys, or a copy of " +
        "the key file); see docs/operations.md#master-keys.");

    private static byte[] AssociatedData(string masterKeyId) => Encoding.UTF8.GetBytes("latchkey/key-ring/v1/" + masterKeyId);
}

/// <summary>
/// Encrypts each new Data Protection key with the active master key, so that the key ring in
/// the database opens only with the master key, which is kept apart from it.
/// </summary>
internal sealed class KeyRingEncryptor(MasterKeys masterKeys) : IXmlEncryptor
{
    public EncryptedXmlInfo Encrypt(XElement plaintextElement) =>
        new(KeyRingCiphertext.Seal(plaintextElement, masterKeys), typeof(KeyRingDecryptor));
}

/// <summary>
/// Opens key ring elements sealed by <see cref="KeyRingEncryptor"/>. Data Protection creates it by
/// the type name stored in each row, with the application's services: keep its name and namespace.
/// </summary>
public sealed class KeyRingDecryptor(IServiceProvider services) : IXmlDecryptor
{
    public XElement Decrypt(XElement encryptedElement) =>
        KeyRingCiphertext.Open(encryptedElement, services.GetRequiredService<MasterKeys>());
}

/// <summary>
/// The key ring's store, checked on every read: when an element is sealed under a master key
/// this process does not have, reading fails with a message that says so. Otherwise Data
/// Protection would drop the keys it cannot open and write a new one under the wrong master key,
/// which the servers that do hold the right key could not read.
/// </summary>
internal sealed class MasterKeyCheckedRepository(IXmlRepository store, MasterKeys masterKeys) : IXmlRepository
{
    public IReadOnlyCollection<XElement> GetAllElements()
    {
        var elements = store.GetAllElements();
        foreach (var element in elements)
        {
            foreach (var (_, ciphertext) in KeyRingCiphertext.SealedParts(element))
            {
                if (KeyRingCiphertext.MasterKeyIdOf(ciphertext) is { } id && !masterKeys.Has(id))
                {
                    throw KeyRingCiphertext.MissingMasterKey(id, masterKeys);
                }
            }
        }
        return elements;
    }

    public void StoreElement(XElement element, string friendlyName) => store.StoreElement(element, friendlyName);
}

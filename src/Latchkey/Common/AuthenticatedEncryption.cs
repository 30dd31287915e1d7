using System.Security.Cryptography;

namespace Latchkey.Common;

/// <summary>
/// AES-256-GCM with a random nonce, laid out as <c>nonce (12) | tag (16) | ciphertext</c>. The
/// associated data binds a ciphertext to where it belongs (a record and field, a key id), so a
/// value copied elsewhere does not open.
/// </summary>
public static class AuthenticatedEncryption
{
    public const int NonceSize = 12;
    public const int TagSize = 16;

    public static byte[] Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        var output = new byte[NonceSize + TagSize + plaintext.Length];
        var nonce = output.AsSpan(0, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(key, TagSize);
        aes.Encrypt(nonce, plaintext, output.AsSpan(NonceSize + TagSize), output.AsSpan(NonceSize, TagSize), associatedData);
        return output;
    }

    /// <summary>The plaintext; a <see cref="CryptographicException"/> when the key, the data or the associated data is not the one sealed.</summary>
    public static byte[] Open(ReadOnlySpan<byte> key, ReadOnlySpan<byte> sealedData, ReadOnlySpan<byte> associatedData)
    {
        if (sealedData.Length < NonceSize + TagSize)
        {
            throw new CryptographicException("The ciphertext is too short to be AES-GCM output.");
        }
        var plaintext = new byte[sealedData.Length - NonceSize - TagSize];
        using var aes = new AesGcm(key, TagSize);
        aes.Decrypt(sealedData[..NonceSize], sealedData[(NonceSize + TagSize)..], sealedData.Slice(NonceSize, TagSize), plaintext, associatedData);
        return plaintext;
    }
}

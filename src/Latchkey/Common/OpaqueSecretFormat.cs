using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Latchkey.Common;

/// <summary>
/// The shape of every secret Latchkey hands out (API keys now; access and refresh tokens later):
/// a fixed prefix that says what the secret is, 43 random base62 characters (256 bits) and a
/// 6-character checksum. The checksum lets a malformed or mistyped secret be refused without a
/// database look-up, and lets secret scanners recognise leaked ones.
/// </summary>
public sealed class OpaqueSecretFormat
{
    public const string Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    public const int RandomLength = 43;
    public const int ChecksumLength = 6;

    /// <summary>Characters of the random part kept, after the prefix, as the display prefix.</summary>
    private const int DisplayRandomLength = 6;

    public OpaqueSecretFormat(string prefix)
    {
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        Prefix = prefix;
        Length = prefix.Length + RandomLength + ChecksumLength;
    }

    public string Prefix { get; }

    /// <summary>Total length of a well-formed secret.</summary>
    public int Length { get; }

    public string Generate() => Generate("");

    /// <summary>
    /// A secret whose random part begins with <paramref name="lead"/> (base62, fixed width) and
    /// goes on with random characters; <paramref name="lead"/> carries no secret.
    /// </summary>
    public string Generate(string lead)
    {
        if (lead.Length >= RandomLength / 4 || lead.AsSpan().ContainsAnyExcept(Base62))
        {
            throw new ArgumentException("The lead must be a few base62 characters.", nameof(lead));
        }
        var random = lead + RandomNumberGenerator.GetString(Alphabet, RandomLength - lead.Length);
        return string.Concat(Prefix, random, Checksum(Prefix + random));
    }

    /// <summary>A non-negative number as <paramref name="width"/> base62 digits; ordinal order is numeric order.</summary>
    public static string Base62Digits(long value, int width)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(value);
        Span<char> digits = stackalloc char[width];
        WriteBase62((ulong)value, digits);
        return new string(digits);
    }

    /// <summary>Fills <paramref name="destination"/> with the low base62 digits of <paramref name="value"/>, most significant first.</summary>
    private static void WriteBase62(ulong value, Span<char> destination)
    {
        for (var i = destination.Length - 1; i >= 0; i--)
        {
            destination[i] = Alphabet[(int)(value % 62)];
            value /= 62;
        }
    }

    /// <summary>True when the value could be a secret of this kind (prefix, length, alphabet, checksum).</summary>
    public bool IsWellFormed(string? value)
    {
        if (value is null || value.Length != Length || !value.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }
        var payload = value.AsSpan(Prefix.Length, RandomLength);
        if (payload.ContainsAnyExcept(Base62))
        {
            return false;
        }
        Span<char> expected = stackalloc char[ChecksumLength];
        WriteChecksum(value.AsSpan(0, Prefix.Length + RandomLength), expected);
        return value.AsSpan(Prefix.Length + RandomLength).SequenceEqual(expected);
    }

    /// <summary>True when the value starts with this format's prefix (well-formed or not).</summary>
    public bool HasPrefix(string? value) => value is not null && value.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>A short, non-secret beginning of the value that lets its owner recognise it in a list.</summary>
    public string DisplayPrefix(string value) => value[..(Prefix.Length + DisplayRandomLength)];

    private static readonly System.Buffers.SearchValues<char> Base62 = System.Buffers.SearchValues.Create(Alphabet);

    private static string Checksum(string payload)
    {
        Span<char> checksum = stackalloc char[ChecksumLength];
        WriteChecksum(payload, checksum);
        return new string(checksum);
    }

    private static void WriteChecksum(ReadOnlySpan<char> payload, Span<char> destination)
    {
        // The payload is ASCII by construction (prefix and base62), so one byte per char.
        Span<byte> bytes = payload.Length <= 256 ? stackalloc byte[payload.Length] : new byte[payload.Length];
        Encoding.ASCII.GetBytes(payload, bytes);
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(bytes, digest);
        // 62^6 > 2^32, so six base62 digits hold any 32-bit value.
        WriteBase62(BinaryPrimitives.ReadUInt32BigEndian(digest), destination);
    }
}

/// <summary>How stored secrets are kept: a SHA-256 hash, compared in constant time.</summary>
public static class SecretHash
{
    public static byte[] Compute(string secret)
    {
        var bytes = Encoding.UTF8.GetBytes(secret);
        return SHA256.HashData(bytes);
    }

    public static bool Matches(ReadOnlySpan<byte> storedHash, string presentedSecret) =>
        CryptographicOperations.FixedTimeEquals(storedHash, Compute(presentedSecret));
}

/// <summary>Readable, prefixed identifiers for stored objects (<c>key_3Fh...</c>). Not secrets.</summary>
public static class Identifiers
{
    public static string New(string kind) => $"{kind}_{RandomNumberGenerator.GetString(OpaqueSecretFormat.Alphabet, 20)}";

    /// <summary>A kind and 16 random lowercase hex digits (<c>mcp_3f9c0a...</c>): the form ids in URLs and cookies are checked against.</summary>
    public static string NewHex(string kind) => $"{kind}_{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}";
}

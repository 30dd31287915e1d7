using Latchkey.Common;

namespace Latchkey.Features.AuthorizationServer.Tokens;

/// <summary>
/// The opaque tokens the authorization server hands out. Like API keys they carry a prefix and a
/// checksum, so malformed ones are refused before any look-up and leaked ones are recognisable.
/// </summary>
public static class TokenFormats
{
    public static readonly OpaqueSecretFormat AccessToken = new("lk_at_");
    public static readonly OpaqueSecretFormat RefreshToken = new("lk_rt_");

    /// <summary>Name of the token entry property that keeps the granted scopes readable without decrypting the payload.</summary>
    public const string ScopesProperty = "lk_scopes";

    /// <summary>Name of the token entry property that keeps the audiences (RFC 8707 resources).</summary>
    public const string AudiencesProperty = "lk_aud";

    /// <summary>Name of the token entry property that keeps the thumbprint of the DPoP key an access token is bound to (RFC 9449).</summary>
    public const string KeyThumbprintProperty = "lk_jkt";

    /// <summary>Latchkey's format for a token type stored by reference, or null for types in OpenIddict's own format (codes).</summary>
    public static OpaqueSecretFormat? ForType(string? tokenType) => tokenType switch
    {
        OpenIddict.Abstractions.OpenIddictConstants.TokenTypeIdentifiers.AccessToken => AccessToken,
        OpenIddict.Abstractions.OpenIddictConstants.TokenTypeIdentifiers.RefreshToken => RefreshToken,
        _ => null,
    };

    /// <summary>True when the value carries one of Latchkey's token prefixes.</summary>
    public static bool HasLatchkeyPrefix(string value) => AccessToken.HasPrefix(value) || RefreshToken.HasPrefix(value);

    public static bool IsWellFormed(string value) => AccessToken.IsWellFormed(value) || RefreshToken.IsWellFormed(value);

    /// <summary>Base62 digits of the issue minute at the start of an access or refresh token's random part.</summary>
    public const int IssueMinuteDigits = 5;

    /// <summary>
    /// A new access or refresh token. Its random part starts with the minute it was issued (five
    /// base62 digits, not secret; 38 random characters, 226 bits, follow), so that stored
    /// reference ids sort by issue time: see <see cref="StoredReferenceId"/>.
    /// </summary>
    public static string New(OpaqueSecretFormat format, DateTimeOffset now) =>
        format.Generate(OpaqueSecretFormat.Base62Digits(now.ToUnixTimeSeconds() / 60, IssueMinuteDigits));

    /// <summary>
    /// How a reference id is stored: Base64 of its SHA-256 hash, led for Latchkey's tokens by their
    /// issue minute. New rows then go to the end of the reference-id index and clean-up removes
    /// old ones from its start, instead of touching its pages all over (the hash alone is random).
    /// </summary>
    public static string StoredReferenceId(string token)
    {
        var hash = Convert.ToBase64String(SecretHash.Compute(token));
        var format = AccessToken.HasPrefix(token) ? AccessToken : RefreshToken.HasPrefix(token) ? RefreshToken : null;
        return format is not null && token.Length > format.Prefix.Length + IssueMinuteDigits
            ? string.Concat(token.AsSpan(format.Prefix.Length, IssueMinuteDigits), ".", hash)
            : hash;
    }
}

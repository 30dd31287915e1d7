using Latchkey.Common;

namespace Latchkey.Features.AuthorizationServer;

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

    /// <summary>How OpenIddict stores a reference id: Base64 of its SHA-256 hash.</summary>
    public static string StoredReferenceId(string token) => Convert.ToBase64String(SecretHash.Compute(token));
}

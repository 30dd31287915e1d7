using System.Security.Cryptography;
using Latchkey.Common;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Core;

namespace Latchkey.Features.AuthorizationServer;

/// <summary>
/// OpenIddict's application manager with SHA-256 client secrets. OpenIddict hashes secrets with
/// PBKDF2 because people may choose them; Latchkey's are server-generated with 256 bits of
/// entropy, where a slow hash adds nothing but cost on every token request.
/// </summary>
public sealed class OAuthApplicationManager(
    IOpenIddictApplicationCache<OAuthApplication> cache,
    ILogger<OpenIddictApplicationManager<OAuthApplication>> logger,
    IOptionsMonitor<OpenIddictCoreOptions> options,
    IOpenIddictApplicationStore<OAuthApplication> store)
    : OpenIddictApplicationManager<OAuthApplication>(cache, logger, options, store)
{
    /// <summary>Client secrets look like <c>lk_cs_</c> + 43 base62 characters + checksum.</summary>
    public static readonly OpaqueSecretFormat SecretFormat = new("lk_cs_");

    protected override ValueTask<string> ObfuscateClientSecretAsync(string secret, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Convert.ToBase64String(SecretHash.Compute(secret)));

    protected override ValueTask<bool> ValidateClientSecretAsync(string secret, string comparand, CancellationToken cancellationToken = default)
    {
        // A malformed secret is refused without hashing; the comparison is constant-time.
        if (!SecretFormat.IsWellFormed(secret))
        {
            return ValueTask.FromResult(false);
        }
        Span<byte> stored = stackalloc byte[SHA256.HashSizeInBytes];
        return ValueTask.FromResult(
            Convert.TryFromBase64String(comparand, stored, out var written) && written == stored.Length &&
            SecretHash.Matches(stored, secret));
    }
}

/// <summary>OpenIddict's token manager, storing reference ids as <see cref="TokenFormats.StoredReferenceId"/> says.</summary>
public sealed class OAuthTokenManager(
    IOpenIddictTokenCache<OAuthToken> cache,
    ILogger<OpenIddictTokenManager<OAuthToken>> logger,
    IOptionsMonitor<OpenIddictCoreOptions> options,
    IOpenIddictTokenStore<OAuthToken> store)
    : OpenIddictTokenManager<OAuthToken>(cache, logger, options, store)
{
    protected override ValueTask<string> ObfuscateReferenceIdAsync(string identifier, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(TokenFormats.StoredReferenceId(identifier));
}

using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Latchkey.Common;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Latchkey.Features.AuthorizationServer.Tokens;

/// <summary>A DPoP proof that passed every check: the thumbprint of its key (RFC 7638) and the nonce it carried.</summary>
public sealed record DPoPProof(string KeyThumbprint, string? Nonce);

/// <summary>
/// Checks DPoP proofs (RFC 9449 §4.3) and hands out the server's nonces (§8). A proof is a JWT of
/// type <c>dpop+jwt</c>, signed with an asymmetric key whose public half is in its header, for one
/// request (<c>htm</c>, <c>htu</c>), recent (<c>iat</c>), used once (<c>jti</c>), and, beside an
/// access token, for that token (<c>ath</c>). Nonces need no storage: each is a time-limited
/// Data Protection payload, so every node that shares the key ring accepts every node's nonces.
/// </summary>
public sealed class DPoPProofs(TimeProvider time, IMemoryCache seen, IDataProtectionProvider protection, IOptions<AuthorizationServerOptions> options)
{
    private const int MaxProofLength = 8 * 1024;
    private static readonly TimeSpan FutureSkew = TimeSpan.FromSeconds(60);
    private static readonly JsonWebTokenHandler s_handler = new();

    private readonly ITimeLimitedDataProtector _nonces = protection.CreateProtector("Latchkey.DPoP.Nonce").ToTimeLimitedDataProtector();

    private DPoPOptions Settings => options.Value.DPoP;

    /// <summary>Whether the request carries a DPoP proof header at all.</summary>
    public static bool HasProof(HttpRequest request) => request.Headers.ContainsKey(DPoPScheme.ProofHeader);

    /// <summary>
    /// The proof of this request for <paramref name="method"/> at <paramref name="url"/> (and for
    /// <paramref name="accessToken"/>, at a resource), or why it is not one.
    /// </summary>
    public async Task<(DPoPProof? Proof, string? Problem)> ValidateAsync(HttpRequest request, string method, string url, string? accessToken)
    {
        var headers = request.Headers[DPoPScheme.ProofHeader];
        if (headers.Count != 1 || string.IsNullOrEmpty(headers[0]) || headers[0]!.Contains(','))
        {
            return (null, "Send exactly one DPoP header, holding one proof.");
        }
        var proof = headers[0]!;
        if (proof.Length > MaxProofLength || !s_handler.CanReadToken(proof))
        {
            return (null, "The DPoP proof is not a well-formed JWT.");
        }
        JsonWebToken jwt;
        JsonWebKey key;
        try
        {
            jwt = s_handler.ReadJsonWebToken(proof);
            using var header = JsonDocument.Parse(Base64UrlEncoder.Decode(jwt.EncodedHeader));
            if (!header.RootElement.TryGetProperty("jwk", out var jwk) || jwk.ValueKind != JsonValueKind.Object)
            {
                return (null, "The DPoP proof's header must carry the public key as 'jwk'.");
            }
            key = new JsonWebKey(jwk.GetRawText());
        }
        catch (Exception exception) when (exception is ArgumentException or JsonException or FormatException or SecurityTokenException)
        {
            return (null, "The DPoP proof is not a well-formed JWT.");
        }
        if (!string.Equals(jwt.Typ, "dpop+jwt", StringComparison.OrdinalIgnoreCase))
        {
            return (null, "The DPoP proof's typ must be 'dpop+jwt'.");
        }
        if (!DPoPScheme.SigningAlgorithms.Contains(jwt.Alg, StringComparer.Ordinal))
        {
            return (null, $"The DPoP proof must be signed with one of {string.Join(' ', DPoPScheme.SigningAlgorithms)}.");
        }
        if (key.Kty is not ("EC" or "RSA") || key.HasPrivateKey)
        {
            return (null, "The DPoP proof's jwk must be a public EC or RSA key, without its private part.");
        }
        var signature = await s_handler.ValidateTokenAsync(proof, new TokenValidationParameters
        {
            IssuerSigningKey = key,
            ValidTypes = ["dpop+jwt"],
            ValidAlgorithms = DPoPScheme.SigningAlgorithms,
            ValidateIssuer = false,
            ValidateAudience = false,
            ValidateLifetime = false,
            RequireExpirationTime = false,
            RequireSignedTokens = true,
        });
        if (!signature.IsValid)
        {
            return (null, "The DPoP proof's signature does not verify with its jwk.");
        }

        if (!jwt.TryGetPayloadValue<string>("htm", out var htm) || htm != method)
        {
            return (null, $"The DPoP proof's htm must be '{method}', the method of this request.");
        }
        if (!jwt.TryGetPayloadValue<string>("htu", out var htu) || !SameTarget(htu, url))
        {
            return (null, $"The DPoP proof's htu must be '{url}', the URL of this request.");
        }
        if (!jwt.TryGetPayloadValue<long>("iat", out var iat))
        {
            return (null, "The DPoP proof must say when it was made (iat).");
        }
        var now = time.GetUtcNow();
        var issuedAt = DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(iat, 0, 253402300799));
        if (issuedAt > now + FutureSkew || issuedAt < now - TimeSpan.FromSeconds(Settings.ProofLifetimeSeconds))
        {
            return (null, $"The DPoP proof was made too long ago or in the future (iat); make a new one for each request, within {Settings.ProofLifetimeSeconds} seconds.");
        }
        if (!jwt.TryGetPayloadValue<string>("jti", out var jti) || string.IsNullOrEmpty(jti) || jti.Length > 256)
        {
            return (null, "The DPoP proof must carry a unique jti.");
        }
        if (accessToken is not null)
        {
            var expected = Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(accessToken)));
            if (!jwt.TryGetPayloadValue<string>("ath", out var ath) || !CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(ath ?? ""), Encoding.ASCII.GetBytes(expected)))
            {
                return (null, "The DPoP proof's ath must be the hash of the access token it is sent with.");
            }
        }
        // Used once: a proof seen before at this URL is a replay (kept as long as it could be accepted).
        var replayKey = (typeof(DPoPProofs), Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(jti + "\n" + Normalize(url)))));
        if (seen.TryGetValue(replayKey, out _))
        {
            return (null, "This DPoP proof was used before; make a new one (with a new jti) for each request.");
        }
        seen.Set(replayKey, true, issuedAt + TimeSpan.FromSeconds(Settings.ProofLifetimeSeconds) + FutureSkew);

        jwt.TryGetPayloadValue<string>("nonce", out var nonce);
        return (new DPoPProof(Base64UrlEncoder.Encode(key.ComputeJwkThumbprint()), nonce), null);
    }

    /// <summary>A new nonce for the <c>DPoP-Nonce</c> header (base64url: only characters RFC 9449 §8.1 allows).</summary>
    public string NewNonce() =>
        WebEncoders.Base64UrlEncode(_nonces.Protect(RandomNumberGenerator.GetBytes(8), time.GetUtcNow().AddSeconds(Settings.NonceLifetimeSeconds)));

    /// <summary>Whether a nonce is one this server gave out and is still good.</summary>
    public bool IsCurrentNonce(string? nonce)
    {
        if (string.IsNullOrEmpty(nonce) || nonce.Length > 512)
        {
            return false;
        }
        try
        {
            _nonces.Unprotect(WebEncoders.Base64UrlDecode(nonce), out var expires);
            return expires > time.GetUtcNow();
        }
        catch (Exception exception) when (exception is CryptographicException or FormatException)
        {
            return false;
        }
    }

    /// <summary>The URL a proof at this request must name: the public address, without query (RFC 9449 §4.3).</summary>
    public static string RequestUrl(HttpRequest request) => ServerAddress.Base(request.HttpContext) + request.Path.ToUriComponent();

    /// <summary>The thumbprint in a token's <c>cnf</c> claim (<c>{"jkt":"…"}</c>), or null.</summary>
    public static string? BoundThumbprint(string? confirmation)
    {
        if (string.IsNullOrEmpty(confirmation))
        {
            return null;
        }
        try
        {
            using var cnf = JsonDocument.Parse(confirmation);
            return cnf.RootElement.ValueKind == JsonValueKind.Object && cnf.RootElement.TryGetProperty("jkt", out var jkt) && jkt.ValueKind == JsonValueKind.String
                ? jkt.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Whether a value has the shape of a SHA-256 JWK thumbprint (RFC 7638): 43 base64url characters.</summary>
    public static bool IsThumbprint(string? value) =>
        value is { Length: 43 } && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    /// <summary>Compares two thumbprints in constant time.</summary>
    public static bool SameKey(string? presented, string? bound) =>
        presented is not null && bound is not null
        && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(presented), Encoding.ASCII.GetBytes(bound));

    /// <summary>The settings' own problems, for start-up validation.</summary>
    internal static IEnumerable<string> OptionProblems(DPoPOptions settings)
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(settings, new ValidationContext(settings), results, validateAllProperties: true);
        return results.Select(result => $"AuthorizationServer:DPoP: {result.ErrorMessage}");
    }

    // RFC 9449 §4.3 compares htu after RFC 3986 syntax- and scheme-based normalisation, without query and fragment.
    private static bool SameTarget(string? htu, string url) =>
        htu is not null && Uri.TryCreate(htu, UriKind.Absolute, out _) && Normalize(htu) == Normalize(url);

    // Uri lower-cases scheme and host, drops a default port and decodes unreserved escapes; the path stays case-sensitive.
    private static string Normalize(string url) =>
        new Uri(url).GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped);
}

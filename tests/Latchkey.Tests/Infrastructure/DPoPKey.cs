using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Latchkey.Tests.Infrastructure;

/// <summary>
/// A client's DPoP key (P-256) and the proofs it signs (RFC 9449 §4.2), as a client library makes
/// them; Duende.IdentityModel sends them (ProtocolRequest.DPoPProofToken) but leaves making them to
/// the client. Each part can be changed, to make the bad proofs a server must refuse.
/// </summary>
public sealed class DPoPKey : IDisposable
{
    private static readonly JsonWebTokenHandler s_handler = new() { SetDefaultTimesOnTokenCreation = false };
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    /// <summary>The public key as the proof's <c>jwk</c> header carries it.</summary>
    public Dictionary<string, object> PublicJwk
    {
        get
        {
            var parameters = _key.ExportParameters(includePrivateParameters: false);
            return new Dictionary<string, object>
            {
                ["kty"] = "EC",
                ["crv"] = "P-256",
                ["x"] = Base64UrlEncoder.Encode(parameters.Q.X),
                ["y"] = Base64UrlEncoder.Encode(parameters.Q.Y),
            };
        }
    }

    /// <summary>The key's SHA-256 JWK thumbprint (RFC 7638), as <c>cnf.jkt</c> and <c>dpop_jkt</c> name it.</summary>
    public string Thumbprint
    {
        get
        {
            var jwk = PublicJwk;
            var canonical = $"{{\"crv\":\"{jwk["crv"]}\",\"kty\":\"EC\",\"x\":\"{jwk["x"]}\",\"y\":\"{jwk["y"]}\"}}";
            return Base64UrlEncoder.Encode(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
        }
    }

    /// <summary>A proof for one request; <paramref name="change"/> may alter the header and claims before signing.</summary>
    public string Proof(string method, string url, string? accessToken = null, string? nonce = null,
        Action<Dictionary<string, object>, Dictionary<string, object>>? change = null, DateTimeOffset? issuedAt = null, string algorithm = "ES256")
    {
        var header = new Dictionary<string, object> { ["typ"] = "dpop+jwt", ["jwk"] = PublicJwk };
        var claims = new Dictionary<string, object>
        {
            ["jti"] = Guid.NewGuid().ToString("N"),
            ["htm"] = method,
            ["htu"] = url,
            ["iat"] = (issuedAt ?? DateTimeOffset.UtcNow).ToUnixTimeSeconds(),
        };
        if (accessToken is not null)
        {
            claims["ath"] = Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(accessToken)));
        }
        if (nonce is not null)
        {
            claims["nonce"] = nonce;
        }
        change?.Invoke(header, claims);
        if (algorithm == "none")
        {
            header["alg"] = "none";
            return $"{Encode(header)}.{Encode(claims)}.";
        }
        var typ = header.Remove("typ", out var t) ? (string)t : null;
        return s_handler.CreateToken(new SecurityTokenDescriptor
        {
            Claims = claims,
            TokenType = typ,
            AdditionalHeaderClaims = header,
            SigningCredentials = algorithm == "HS256"
                ? new SigningCredentials(new SymmetricSecurityKey(RandomNumberGenerator.GetBytes(32)), SecurityAlgorithms.HmacSha256)
                : new SigningCredentials(new ECDsaSecurityKey(_key), SecurityAlgorithms.EcdsaSha256),
        });
    }

    private static string Encode(object value) => Base64UrlEncoder.Encode(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(value));

    /// <summary>The private part of the key, as a careless client might put it in the <c>jwk</c> header.</summary>
    public string PrivateD => Base64UrlEncoder.Encode(_key.ExportParameters(includePrivateParameters: true).D);

    public void Dispose() => _key.Dispose();
}

public static class DPoPTokenRequests
{
    /// <summary>
    /// Redeems a code as a DPoP client does with Duende.IdentityModel: a proof without a nonce,
    /// <c>use_dpop_nonce</c> with the server's nonce, and the same request again with a proof that carries it.
    /// </summary>
    public static async Task<Duende.IdentityModel.Client.TokenResponse> RedeemCodeWithDPoPAsync(
        LatchkeyServerFixture server, RegisteredApp app, string code, string verifier, DPoPKey key, string? resource = null)
    {
        var tokenUrl = new Uri(server.BaseAddress, "/api/oauth/token").AbsoluteUri;
        Task<Duende.IdentityModel.Client.TokenResponse> RedeemAsync(string? nonce)
        {
            var request = new Duende.IdentityModel.Client.AuthorizationCodeTokenRequest
            {
                Address = tokenUrl, ClientId = app.ClientId, ClientSecret = app.ClientSecret,
                ClientCredentialStyle = Duende.IdentityModel.Client.ClientCredentialStyle.PostBody,
                Code = code, CodeVerifier = verifier, RedirectUri = app.RedirectUri, DPoPProofToken = key.Proof("POST", tokenUrl, nonce: nonce),
            };
            if (resource is not null)
            {
                request.Resource.Add(resource);
            }
            return Duende.IdentityModel.Client.HttpClientTokenRequestExtensions.RequestAuthorizationCodeTokenAsync(server.CreateClient(), request);
        }
        var first = await RedeemAsync(null);
        Assert.Equal("use_dpop_nonce", first.Error);
        var tokens = await RedeemAsync(first.DPoPNonce);
        Assert.False(tokens.IsError, $"{tokens.Error} {tokens.ErrorDescription}");
        Assert.Equal("DPoP", tokens.TokenType);
        return tokens;
    }
}

namespace Latchkey.Common;

/// <summary>
/// The names RFC 9449 (DPoP) gives on the wire, shared by the authorization server that binds
/// tokens to keys and the resources that accept them.
/// </summary>
public static class DPoPScheme
{
    /// <summary>The authorization scheme of a DPoP-bound access token: <c>Authorization: DPoP &lt;token&gt;</c>.</summary>
    public const string Name = "DPoP";

    /// <summary>The request header that carries the proof.</summary>
    public const string ProofHeader = "DPoP";

    /// <summary>The response header that carries a server nonce.</summary>
    public const string NonceHeader = "DPoP-Nonce";

    /// <summary>The token type of a DPoP-bound access token, in token and introspection answers.</summary>
    public const string TokenType = "DPoP";

    public const string InvalidProof = "invalid_dpop_proof";
    public const string UseNonce = "use_dpop_nonce";

    /// <summary>The token of an <c>Authorization</c> header value in the DPoP scheme, or null when it names another scheme.</summary>
    public static string? TokenOf(string authorization) =>
        authorization.StartsWith(Name + " ", StringComparison.OrdinalIgnoreCase) ? authorization[(Name.Length + 1)..].Trim() : null;

    /// <summary>The signature algorithms a proof may use: asymmetric only (never <c>none</c> or an HMAC).</summary>
    public static readonly string[] SigningAlgorithms = ["ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"];
}

using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.Tokens;

namespace Latchkey.Common;

/// <summary>PKCE (RFC 7636) with the S256 method, the only one Latchkey uses or accepts.</summary>
public static class Pkce
{
    /// <summary>§4.2: BASE64URL(SHA256(ASCII(code_verifier))).</summary>
    public static string S256Challenge(string verifier) => Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
}

using System.ComponentModel.DataAnnotations;

namespace Latchkey.Features.AuthorizationServer;

/// <summary>The OAuth 2.1 authorization server. Bound from the <c>AuthorizationServer</c> section.</summary>
public sealed class AuthorizationServerOptions
{
    public const string SectionName = "AuthorizationServer";

    /// <summary>The issuer (<c>iss</c>); defaults to the address of each request.</summary>
    [Url]
    public string? Issuer { get; set; }

    [Range(1, 24 * 60)]
    public int AccessTokenLifetimeMinutes { get; set; } = 60;

    /// <summary>Refresh tokens slide: each use issues a new one with this lifetime.</summary>
    [Range(1, 365)]
    public int RefreshTokenLifetimeDays { get; set; } = 30;

    [Range(1, 10)]
    public int AuthorizationCodeLifetimeMinutes { get; set; } = 10;

    /// <summary><c>opaque</c> (default: prefixed random strings stored as hashes) or <c>jwt</c> (signed, for resource servers that validate locally).</summary>
    [RegularExpression("^(opaque|jwt)$", ErrorMessage = "AuthorizationServer:AccessTokenFormat must be 'opaque' or 'jwt'.")]
    public string AccessTokenFormat { get; set; } = "opaque";

    /// <summary>
    /// Every authorization request must first be pushed (RFC 9126) and then name its
    /// <c>request_uri</c>. Off: only apps that require it for themselves must.
    /// </summary>
    public bool RequirePushedAuthorizationRequests { get; set; }

    /// <summary>Whether public clients (loopback or https redirect URIs) may register themselves (RFC 7591).</summary>
    public bool AllowPublicClientRegistration { get; set; } = true;

    /// <summary>Initial access tokens that permit registering confidential clients dynamically. Empty: none may.</summary>
    public List<string> InitialAccessTokens { get; set; } = [];

    /// <summary>
    /// The scopes a client that registers itself without an initial access token gets when it asks
    /// for none, and the most it may ask for. Unset: <see cref="DefaultAnonymousRegistrationScopes"/>
    /// (those of them the scope catalog has). Each must be a known scope.
    /// </summary>
    public string[]? AnonymousRegistrationScopes { get; set; }

    /// <summary>
    /// Signing in (<c>openid</c>, <c>profile</c>, <c>email</c>), reading who the user is
    /// (<c>IDENTITY</c>, what <c>latchkey test-client</c> checks) and the MCP gateway
    /// (<c>USE_TOOLS</c>, which an MCP client registering itself needs and which gateway tokens
    /// limit to one server). Nothing that runs agents, reads their results, manages integrations or
    /// reads the security log: those need an app someone answers for.
    /// </summary>
    public static readonly string[] DefaultAnonymousRegistrationScopes = ["openid", "profile", "email", "IDENTITY", "USE_TOOLS"];

    public bool UsesJwtAccessTokens => string.Equals(AccessTokenFormat, "jwt", StringComparison.OrdinalIgnoreCase);
}

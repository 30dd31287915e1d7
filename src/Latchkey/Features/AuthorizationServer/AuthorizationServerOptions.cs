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

    /// <summary>Clients that identify themselves by the URL of their metadata document (the <c>ClientMetadataDocuments</c> subsection).</summary>
    public ClientMetadataDocumentOptions ClientMetadataDocuments { get; set; } = new();

    /// <summary>Sender-constrained tokens (RFC 9449; the <c>DPoP</c> subsection).</summary>
    public DPoPOptions DPoP { get; set; } = new();

    /// <summary>
    /// The client-credentials and refresh-token grants are answered by Latchkey's own handler
    /// (<c>DirectTokenGrants</c>: the same checks, rows and answer, with tokens written by group
    /// commit) when a request will plainly succeed; everything else goes to OpenIddict. Off: OpenIddict answers every request.
    /// </summary>
    public bool DirectGrants { get; set; } = true;

    public bool UsesJwtAccessTokens => string.Equals(AccessTokenFormat, "jwt", StringComparison.OrdinalIgnoreCase);
}

/// <summary>
/// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document; the MCP
/// authorization specification's recommended way for a client to identify itself): a
/// <c>client_id</c> that is an https URL names a JSON document of client metadata, which Latchkey
/// fetches, checks and keeps as a public app with the self-registration scopes.
/// </summary>
public sealed class ClientMetadataDocumentOptions
{
    /// <summary>Whether an https URL is accepted as a <c>client_id</c>. On, as dynamic registration is.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Hosts whose documents are accepted: <c>app.example.com</c> exactly, <c>*.example.com</c>
    /// for its subdomains. Empty: any host that is not denied.
    /// </summary>
    public List<string> AllowedHosts { get; set; } = [];

    /// <summary>Hosts whose documents are refused without being fetched, in the same forms; a denial wins over an allowance.</summary>
    public List<string> DeniedHosts { get; set; } = [];

    /// <summary>Off in production: a document is never fetched from a private or loopback address (SSRF). On for tests and labs.</summary>
    public bool AllowPrivateNetworks { get; set; }

    /// <summary>A larger document is refused; the draft recommends 5 KB.</summary>
    [Range(1024, 65536)]
    public int MaxDocumentBytes { get; set; } = 5120;

    [Range(1, 30)]
    public int FetchTimeoutSeconds { get; set; } = 5;

    /// <summary>A document is kept at least this long, whatever its Cache-Control says (no-store included), so a client cannot make Latchkey fetch on every request.</summary>
    [Range(0, 86400)]
    public int MinCacheSeconds { get; set; } = 300;

    /// <summary>A document is fetched again at the latest after this long, however long its Cache-Control allows.</summary>
    [Range(60, 604800)]
    public int MaxCacheSeconds { get; set; } = 86400;
}

/// <summary>
/// DPoP (RFC 9449): a client that sends a proof with its token request gets tokens bound to the
/// proof's key, which work only with a fresh proof signed by that key.
/// </summary>
public sealed class DPoPOptions
{
    /// <summary>
    /// The token endpoint asks for a server nonce in every proof (RFC 9449 §8), so that a proof
    /// cannot be made ahead of time: the first request gets <c>use_dpop_nonce</c> and the nonce.
    /// </summary>
    public bool RequireNonce { get; set; } = true;

    /// <summary>How old (by its <c>iat</c>) a proof may be; a proof is also accepted once only.</summary>
    [Range(10, 600)]
    public int ProofLifetimeSeconds { get; set; } = 300;

    /// <summary>How long a nonce the server gave out stays good.</summary>
    [Range(30, 3600)]
    public int NonceLifetimeSeconds { get; set; } = 300;
}

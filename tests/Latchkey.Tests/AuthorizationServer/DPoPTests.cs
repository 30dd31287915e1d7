using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Duende.IdentityModel.Client;
using Latchkey.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;
using static Latchkey.Tests.Infrastructure.OAuthClient;

namespace Latchkey.Tests.AuthorizationServer;

/// <summary>
/// DPoP (RFC 9449) through Duende.IdentityModel, which sends the proofs and reads the nonces: the
/// token endpoint asks for its nonce, binds access tokens (and public clients' refresh tokens) to
/// the proof's key, and Latchkey's API, userinfo and introspection honour the binding.
/// </summary>
public abstract class DPoPTests(LatchkeyServerFixture server)
{
    [Fact]
    public async Task A_public_client_gets_tokens_bound_to_its_key_after_the_nonce_round_trip()
    {
        using var key = new DPoPKey();
        var (app, code, verifier) = await CodeAsync(confidential: false);

        var first = await RedeemAsync(app, code, verifier, key.Proof("POST", TokenUrl));
        Assert.Equal("use_dpop_nonce", first.Error);
        Assert.False(string.IsNullOrEmpty(first.DPoPNonce));
        // The code is not spent by a request refused for its nonce.
        var tokens = await RedeemAsync(app, code, verifier, key.Proof("POST", TokenUrl, nonce: first.DPoPNonce));

        Assert.False(tokens.IsError, $"{tokens.Error} {tokens.ErrorDescription}");
        Assert.Equal("DPoP", tokens.TokenType);
        Assert.False(string.IsNullOrEmpty(tokens.DPoPNonce));
        Assert.Equal(HttpStatusCode.OK, (await CallMeWithProofAsync(tokens.AccessToken!, key)).StatusCode);

        // The refresh token is bound too: without a proof, or with another key, it is refused.
        var withoutProof = await RefreshAsync(app, tokens.RefreshToken!, proof: null);
        Assert.Equal("invalid_grant", withoutProof.Error);
        using var other = new DPoPKey();
        var otherKey = await RefreshAsync(app, tokens.RefreshToken!, other.Proof("POST", TokenUrl, nonce: tokens.DPoPNonce));
        Assert.Equal("invalid_grant", otherKey.Error);
        var refreshed = await RefreshAsync(app, tokens.RefreshToken!, key.Proof("POST", TokenUrl, nonce: tokens.DPoPNonce));
        Assert.False(refreshed.IsError, $"{refreshed.Error} {refreshed.ErrorDescription}");
        Assert.Equal("DPoP", refreshed.TokenType);
        Assert.Equal(HttpStatusCode.OK, (await CallMeWithProofAsync(refreshed.AccessToken!, key)).StatusCode);
    }

    [Fact]
    public async Task Introspection_reports_the_binding_and_a_confidential_clients_refresh_token_stays_unbound()
    {
        using var key = new DPoPKey();
        var (app, code, verifier) = await CodeAsync(confidential: true);
        var tokens = await WithNonceAsync(nonce => RedeemAsync(app, code, verifier, key.Proof("POST", TokenUrl, nonce: nonce)));

        var introspected = await IntrospectAsync(server.CreateClient(), app, tokens.AccessToken!);

        Assert.True(introspected.GetProperty("active").GetBoolean());
        Assert.Equal("DPoP", introspected.GetProperty("token_type").GetString());
        Assert.Equal(key.Thumbprint, introspected.GetProperty("cnf").GetProperty("jkt").GetString());
        // A confidential client authenticates when it refreshes; without a proof it gets a Bearer token.
        var refreshed = await RefreshAsync(app, tokens.RefreshToken!, proof: null);
        Assert.False(refreshed.IsError, $"{refreshed.Error} {refreshed.ErrorDescription}");
        Assert.Equal("Bearer", refreshed.TokenType);
        var unbound = await IntrospectAsync(server.CreateClient(), app, refreshed.AccessToken!);
        Assert.Equal("Bearer", unbound.GetProperty("token_type").GetString());
        Assert.False(unbound.TryGetProperty("cnf", out _));
    }

    [Fact]
    public async Task The_api_takes_a_bound_token_only_with_a_fresh_proof_for_that_request_and_token()
    {
        using var key = new DPoPKey();
        using var other = new DPoPKey();
        var token = await BoundTokenAsync(key);
        var me = Url("/external-api/v1/me");

        // As a bearer token it is refused, and the challenge offers DPoP.
        var asBearer = await CallMeAsync(server.CreateClient(), token);
        Assert.Equal(HttpStatusCode.Unauthorized, asBearer.StatusCode);
        Assert.Contains(asBearer.Headers.WwwAuthenticate, h => h.Scheme == "Bearer" && h.Parameter!.Contains("error=\"invalid_token\""));
        Assert.Contains(asBearer.Headers.WwwAuthenticate, h => h.Scheme == "DPoP" && h.Parameter!.Contains("algs=\"ES256"));

        var reused = key.Proof("GET", me, accessToken: token);
        Assert.Equal(HttpStatusCode.OK, (await CallMeWithDPoPAsync(token, reused)).StatusCode);
        var refusals = new (string What, string? Proof)[]
        {
            ("no proof", null),
            ("a replayed proof", reused),
            ("another method", key.Proof("POST", me, accessToken: token)),
            ("another URL", key.Proof("GET", Url("/external-api/v1/keys"), accessToken: token)),
            ("no ath", key.Proof("GET", me)),
            ("the ath of another token", key.Proof("GET", me, accessToken: token + "x")),
            ("another key", other.Proof("GET", me, accessToken: token)),
            ("an old proof", key.Proof("GET", me, accessToken: token, issuedAt: DateTimeOffset.UtcNow.AddMinutes(-10))),
        };
        foreach (var (what, proof) in refusals)
        {
            var response = await CallMeWithDPoPAsync(token, proof);
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, what);
            var challenge = Assert.Single(response.Headers.WwwAuthenticate, h => h.Scheme == "DPoP");
            Assert.True(challenge.Parameter!.Contains("error=\"invalid_dpop_proof\"") || (proof is null && challenge.Parameter.Contains("error=\"invalid_")), $"{what}: {challenge}");
            Assert.DoesNotContain(response.Headers.WwwAuthenticate, h => h.Scheme == "Bearer" && h.Parameter!.Contains("error="));
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
            Assert.StartsWith("invalid_", problem.GetProperty("error").GetString());
        }
        // An unbound token may come either way; with the DPoP scheme its proof is still checked.
        var bearer = (await IssueAsync(server)).AccessToken;
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(server.CreateClient(), bearer)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await CallMeWithDPoPAsync(bearer, key.Proof("GET", me, accessToken: bearer))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await CallMeWithDPoPAsync(bearer, key.Proof("GET", me))).StatusCode);
    }

    [Fact]
    public async Task Client_credentials_with_a_proof_give_a_bound_token()
    {
        using var key = new DPoPKey();
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner);

        var tokens = await WithNonceAsync(nonce => server.CreateClient().RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = TokenUrl, ClientId = app.ClientId, ClientSecret = app.ClientSecret, Scope = "IDENTITY",
            DPoPProofToken = key.Proof("POST", TokenUrl, nonce: nonce),
        }));

        Assert.Equal("DPoP", tokens.TokenType);
        Assert.Equal(key.Thumbprint, (await IntrospectAsync(server.CreateClient(), app, tokens.AccessToken!)).GetProperty("cnf").GetProperty("jkt").GetString());
        Assert.Equal(HttpStatusCode.Unauthorized, (await CallMeAsync(server.CreateClient(), tokens.AccessToken!)).StatusCode);
    }

    [Fact]
    public async Task Userinfo_takes_a_bound_token_with_the_dpop_scheme()
    {
        using var key = new DPoPKey();
        var token = await BoundTokenAsync(key, scope: "openid profile");
        var userinfo = Url("/api/oauth/userinfo");

        var asBearer = await server.CreateClient().GetUserInfoAsync(new UserInfoRequest { Address = userinfo, Token = token });
        Assert.True(asBearer.IsError);
        Assert.Equal(HttpStatusCode.Unauthorized, asBearer.HttpStatusCode);

        using var request = new HttpRequestMessage(HttpMethod.Get, userinfo);
        request.SetDPoPToken(token, key.Proof("GET", userinfo, accessToken: token));
        var answered = await server.CreateClient().SendAsync(request);
        Assert.True(answered.StatusCode == HttpStatusCode.OK, await answered.Content.ReadAsStringAsync());
        Assert.True((await answered.Content.ReadFromJsonAsync<JsonElement>()).TryGetProperty("sub", out _));
    }

    [Fact]
    public async Task A_code_asked_for_with_dpop_jkt_is_redeemed_only_with_that_key()
    {
        using var key = new DPoPKey();
        using var other = new DPoPKey();
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner, confidential: false);
        var user = await TestAccounts.SignUpAsync(server);
        var (verifier, challenge) = NewPkce();
        var outcome = await AuthorizeAsync(user.Session, AuthorizeUrl(app, "IDENTITY", challenge,
            extra: new Dictionary<string, string?> { ["dpop_jkt"] = key.Thumbprint }));
        var code = outcome.Query["code"];

        Assert.Equal("invalid_grant", (await RedeemAsync(app, code, verifier, proof: null)).Error);
        var nonce = (await RedeemAsync(app, code, verifier, other.Proof("POST", TokenUrl))).DPoPNonce;
        Assert.Equal("invalid_grant", (await RedeemAsync(app, code, verifier, other.Proof("POST", TokenUrl, nonce: nonce))).Error);
        var tokens = await RedeemAsync(app, code, verifier, key.Proof("POST", TokenUrl, nonce: nonce));
        Assert.False(tokens.IsError, $"{tokens.Error} {tokens.ErrorDescription}");
        Assert.Equal("DPoP", tokens.TokenType);

        // A dpop_jkt that is no thumbprint is refused at the authorization endpoint.
        var malformed = await AuthorizeAsync(user.Session, AuthorizeUrl(app, "IDENTITY", challenge,
            extra: new Dictionary<string, string?> { ["dpop_jkt"] = "not-a-thumbprint" }));
        Assert.Equal("invalid_request", malformed.Query["error"]);
    }

    [Fact]
    public async Task A_pushed_request_with_a_proof_binds_its_code_to_the_key()
    {
        using var key = new DPoPKey();
        using var other = new DPoPKey();
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner, confidential: false);
        var user = await TestAccounts.SignUpAsync(server);
        var (verifier, challenge) = NewPkce();
        var parUrl = Url("/api/oauth/par");
        PushedAuthorizationRequest Push(string proof, string? thumbprint = null) => new()
        {
            Address = parUrl, ClientId = app.ClientId, ClientCredentialStyle = ClientCredentialStyle.PostBody,
            ResponseType = "code", RedirectUri = app.RedirectUri, Scope = "IDENTITY", State = "xyz",
            CodeChallenge = challenge, CodeChallengeMethod = "S256", DPoPProofToken = proof, DPoPKeyThumbprint = thumbprint,
        };

        var first = await server.CreateClient().PushAuthorizationAsync(Push(key.Proof("POST", parUrl)));
        Assert.Equal("use_dpop_nonce", first.Error);
        var mismatched = await server.CreateClient().PushAuthorizationAsync(Push(key.Proof("POST", parUrl, nonce: first.DPoPNonce), other.Thumbprint));
        Assert.Equal("invalid_dpop_proof", mismatched.Error);
        var pushed = await server.CreateClient().PushAuthorizationAsync(Push(key.Proof("POST", parUrl, nonce: first.DPoPNonce)));
        Assert.False(pushed.IsError, pushed.Error);

        var outcome = await AuthorizeAsync(user.Session, QueryHelpers.AddQueryString("/auth/authorize",
            new Dictionary<string, string?> { ["client_id"] = app.ClientId, ["request_uri"] = pushed.RequestUri }));
        Assert.True(outcome.Query.ContainsKey("code"), $"{outcome.Response.StatusCode} {outcome.Redirect}");
        var code = outcome.Query["code"];
        var nonce = pushed.DPoPNonce;
        Assert.Equal("invalid_grant", (await RedeemAsync(app, code, verifier, other.Proof("POST", TokenUrl, nonce: nonce))).Error);
        var tokens = await RedeemAsync(app, code, verifier, key.Proof("POST", TokenUrl, nonce: nonce));
        Assert.False(tokens.IsError, $"{tokens.Error} {tokens.ErrorDescription}");
        Assert.Equal("DPoP", tokens.TokenType);
    }

    public static TheoryData<string> BadProofs() =>
    [
        "typ JWT", "alg none", "alg HS256", "private key in jwk", "no jwk", "htm GET", "htu elsewhere", "iat an hour ago",
        "iat in an hour", "no jti", "two proofs", "not a JWT", "a forged nonce",
    ];

    [Theory]
    [MemberData(nameof(BadProofs))]
    public async Task A_bad_proof_at_the_token_endpoint_is_invalid_dpop_proof_and_spends_nothing(string what)
    {
        using var key = new DPoPKey();
        var (app, code, verifier) = await CodeAsync(confidential: false);
        var nonce = (await RedeemAsync(app, code, verifier, key.Proof("POST", TokenUrl))).DPoPNonce;
        var proof = what switch
        {
            "typ JWT" => key.Proof("POST", TokenUrl, nonce: nonce, change: (header, _) => header["typ"] = "JWT"),
            "alg none" => key.Proof("POST", TokenUrl, nonce: nonce, algorithm: "none"),
            "alg HS256" => key.Proof("POST", TokenUrl, nonce: nonce, algorithm: "HS256"),
            "private key in jwk" => key.Proof("POST", TokenUrl, nonce: nonce, change: (header, _) => ((Dictionary<string, object>)header["jwk"])["d"] = key.PrivateD),
            "no jwk" => key.Proof("POST", TokenUrl, nonce: nonce, change: (header, _) => header.Remove("jwk")),
            "htm GET" => key.Proof("GET", TokenUrl, nonce: nonce),
            "htu elsewhere" => key.Proof("POST", "https://elsewhere.example.com/api/oauth/token", nonce: nonce),
            "iat an hour ago" => key.Proof("POST", TokenUrl, nonce: nonce, issuedAt: DateTimeOffset.UtcNow.AddHours(-1)),
            "iat in an hour" => key.Proof("POST", TokenUrl, nonce: nonce, issuedAt: DateTimeOffset.UtcNow.AddHours(1)),
            "no jti" => key.Proof("POST", TokenUrl, nonce: nonce, change: (_, claims) => claims.Remove("jti")),
            "two proofs" => key.Proof("POST", TokenUrl, nonce: nonce) + ", " + key.Proof("POST", TokenUrl, nonce: nonce),
            "not a JWT" => "not-a-jwt",
            "a forged nonce" => key.Proof("POST", TokenUrl, nonce: "Zm9yZ2Vk"),
            _ => throw new ArgumentOutOfRangeException(nameof(what)),
        };

        var refused = await RedeemAsync(app, code, verifier, proof);

        Assert.Equal(HttpStatusCode.BadRequest, refused.HttpStatusCode);
        Assert.Equal(what == "a forged nonce" ? "use_dpop_nonce" : "invalid_dpop_proof", refused.Error);
        Assert.False(string.IsNullOrEmpty(refused.ErrorDescription));
        // Nothing was spent: the code still redeems with a good proof.
        var tokens = await RedeemAsync(app, code, verifier, key.Proof("POST", TokenUrl, nonce: nonce));
        Assert.False(tokens.IsError, $"{what}: {tokens.Error} {tokens.ErrorDescription}");
    }

    [Fact]
    public async Task Discovery_names_the_proof_algorithms()
    {
        var discovery = await server.CreateClient().GetDiscoveryDocumentAsync(new DiscoveryDocumentRequest
        {
            Address = server.BaseAddress.AbsoluteUri, Policy = { RequireHttps = false },
        });

        Assert.False(discovery.IsError, discovery.Error);
        Assert.Contains("ES256", discovery.DPoPSigningAlgorithmsSupported);
        Assert.DoesNotContain(discovery.DPoPSigningAlgorithmsSupported, a => a.StartsWith("HS", StringComparison.Ordinal) || a == "none");
    }

    private string TokenUrl => Url("/api/oauth/token");

    private string Url(string path) => new Uri(server.BaseAddress, path).AbsoluteUri;

    /// <summary>A new app (public or confidential) and a code a new user granted it.</summary>
    private async Task<(RegisteredApp App, string Code, string Verifier)> CodeAsync(bool confidential, string scope = "IDENTITY")
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner, confidential: confidential);
        var (code, verifier) = await GetCodeAsync(await TestAccounts.SignUpAsync(server), app, scope);
        return (app, code, verifier);
    }

    /// <summary>An access token a public client obtained bound to <paramref name="key"/>.</summary>
    private async Task<string> BoundTokenAsync(DPoPKey key, string scope = "IDENTITY")
    {
        var (app, code, verifier) = await CodeAsync(confidential: false, scope);
        var tokens = await WithNonceAsync(nonce => RedeemAsync(app, code, verifier, key.Proof("POST", TokenUrl, nonce: nonce)));
        Assert.Equal("DPoP", tokens.TokenType);
        return tokens.AccessToken!;
    }

    /// <summary>Sends a token request without a nonce, expects to be asked for one, and sends it again with it.</summary>
    private static async Task<TokenResponse> WithNonceAsync(Func<string?, Task<TokenResponse>> send)
    {
        var first = await send(null);
        Assert.Equal("use_dpop_nonce", first.Error);
        var second = await send(first.DPoPNonce);
        Assert.False(second.IsError, $"{second.Error} {second.ErrorDescription}");
        return second;
    }

    private Task<TokenResponse> RedeemAsync(RegisteredApp app, string code, string verifier, string? proof) =>
        server.CreateClient().RequestAuthorizationCodeTokenAsync(new AuthorizationCodeTokenRequest
        {
            Address = TokenUrl, ClientId = app.ClientId, ClientSecret = app.ClientSecret, ClientCredentialStyle = ClientCredentialStyle.PostBody,
            Code = code, CodeVerifier = verifier, RedirectUri = app.RedirectUri, DPoPProofToken = proof,
        });

    private Task<TokenResponse> RefreshAsync(RegisteredApp app, string refreshToken, string? proof) =>
        server.CreateClient().RequestRefreshTokenAsync(new RefreshTokenRequest
        {
            Address = TokenUrl, ClientId = app.ClientId, ClientSecret = app.ClientSecret, ClientCredentialStyle = ClientCredentialStyle.PostBody,
            RefreshToken = refreshToken, DPoPProofToken = proof,
        });

    private Task<HttpResponseMessage> CallMeWithProofAsync(string token, DPoPKey key) =>
        CallMeWithDPoPAsync(token, key.Proof("GET", Url("/external-api/v1/me"), accessToken: token));

    private Task<HttpResponseMessage> CallMeWithDPoPAsync(string token, string? proof)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/external-api/v1/me");
        request.Headers.Authorization = new AuthenticationHeaderValue("DPoP", token);
        if (proof is not null)
        {
            request.Headers.TryAddWithoutValidation("DPoP", proof);
        }
        return server.CreateClient().SendAsync(request);
    }
}

public sealed class DPoPTestsOnSqlite(SqliteServer server) : DPoPTests(server), IClassFixture<SqliteServer>;

public sealed class DPoPTestsOnPostgres(PostgresServer server) : DPoPTests(server), IClassFixture<PostgresServer>;

/// <summary>A server whose operator turned DPoP nonces off (<c>AuthorizationServer:DPoP:RequireNonce</c>).</summary>
public sealed class DPoPWithoutNonceServer : SqliteServer
{
    protected override void ConfigureServer(Microsoft.AspNetCore.Builder.WebApplicationBuilder builder) =>
        builder.Configuration["AuthorizationServer:DPoP:RequireNonce"] = "false";
}

public sealed class DPoPWithoutNonceTests(DPoPWithoutNonceServer server) : IClassFixture<DPoPWithoutNonceServer>
{
    [Fact]
    public async Task Without_required_nonces_the_first_proof_binds_and_a_nonce_is_still_offered()
    {
        using var key = new DPoPKey();
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner, confidential: false);
        var (code, verifier) = await GetCodeAsync(await TestAccounts.SignUpAsync(server), app);
        var tokenUrl = new Uri(server.BaseAddress, "/api/oauth/token").AbsoluteUri;

        var tokens = await server.CreateClient().RequestAuthorizationCodeTokenAsync(new AuthorizationCodeTokenRequest
        {
            Address = tokenUrl, ClientId = app.ClientId, ClientCredentialStyle = ClientCredentialStyle.PostBody,
            Code = code, CodeVerifier = verifier, RedirectUri = app.RedirectUri, DPoPProofToken = key.Proof("POST", tokenUrl),
        });

        Assert.False(tokens.IsError, $"{tokens.Error} {tokens.ErrorDescription}");
        Assert.Equal("DPoP", tokens.TokenType);
        Assert.False(string.IsNullOrEmpty(tokens.DPoPNonce));
    }
}

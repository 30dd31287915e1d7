using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Duende.IdentityModel;
using Duende.IdentityModel.Client;
using Latchkey.Features.SecurityEvents;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static Latchkey.Tests.Infrastructure.OAuthClient;

namespace Latchkey.Tests.AuthorizationServer;

/// <summary>
/// Token exchange (RFC 8693) through Duende.IdentityModel: an agent platform holding a user's token
/// trades it for a narrower one for one resource, with an act claim naming who acts, recorded in
/// the user's security log; anything wider, or someone else's token, is refused.
/// </summary>
public abstract class TokenExchangeTests(LatchkeyServerFixture server)
{
    private const string Resource = "https://tools.example.com/mcp";

    [Fact]
    public async Task A_users_token_is_exchanged_for_a_narrower_one_for_a_resource_with_the_app_as_actor()
    {
        var (app, user, tokens) = await UserTokenAsync("IDENTITY READ_GRAPH");

        var exchanged = await ExchangeAsync(app, tokens.AccessToken!, scope: "READ_GRAPH", resource: Resource);

        Assert.False(exchanged.IsError, $"{exchanged.Error} {exchanged.ErrorDescription}");
        Assert.Equal(OidcConstants.TokenTypeIdentifiers.AccessToken, exchanged.IssuedTokenType);
        Assert.Equal("Bearer", exchanged.TokenType);
        Assert.Equal("READ_GRAPH", exchanged.Scope);
        Assert.Null(exchanged.RefreshToken);
        Assert.True(exchanged.ExpiresIn <= tokens.ExpiresIn);
        var introspected = await IntrospectAsync(server.CreateClient(), app, exchanged.AccessToken!);
        Assert.True(introspected.GetProperty("active").GetBoolean());
        Assert.Equal("READ_GRAPH", introspected.GetProperty("scope").GetString());
        Assert.Contains(Resource, introspected.GetProperty("aud").ToString());
        var act = introspected.GetProperty("act");
        Assert.Equal(app.ClientId, act.GetProperty("client_id").GetString());
        Assert.Equal(app.ClientId, act.GetProperty("sub").GetString());
        // Limited to the resource: Latchkey's own API refuses it.
        Assert.Equal(HttpStatusCode.Unauthorized, (await CallMeAsync(server.CreateClient(), exchanged.AccessToken!)).StatusCode);

        await server.Services.GetRequiredService<SecurityEventLog>().FlushAsync();
        var logged = await server.WithDbAsync(db => db.Set<SecurityEvent>().AsNoTracking()
            .Where(e => e.Type == SecurityEventTypes.TokenIssued && e.Detail!.Contains("token-exchange")).ToListAsync());
        Assert.Contains(logged, e => e.ClientId == app.ClientId && e.Detail!.Contains("resource=" + Resource) && e.Detail.Contains("act="));
        Assert.DoesNotContain(logged, e => e.Detail!.Contains(exchanged.AccessToken!, StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_actor_token_names_the_actor_and_a_second_exchange_keeps_the_chain()
    {
        var (app, _, tokens) = await UserTokenAsync("IDENTITY READ_GRAPH");
        var sidekick = await RegisterAppAsync(await TestAccounts.SignUpAsync(server), ["READ_GRAPH"]);
        var actorToken = JsonDocument.Parse(await (await ClientCredentialsAsync(server, sidekick, "READ_GRAPH")).Content.ReadAsStringAsync())
            .RootElement.GetProperty("access_token").GetString()!;

        var first = await ExchangeAsync(app, tokens.AccessToken!, scope: "IDENTITY READ_GRAPH", actorToken: actorToken);
        var second = await ExchangeAsync(app, first.AccessToken!, scope: "READ_GRAPH");

        Assert.False(first.IsError, $"{first.Error} {first.ErrorDescription}");
        Assert.False(second.IsError, $"{second.Error} {second.ErrorDescription}");
        var act = (await IntrospectAsync(server.CreateClient(), app, second.AccessToken!)).GetProperty("act");
        Assert.Equal(app.ClientId, act.GetProperty("sub").GetString());
        Assert.Equal(sidekick.ClientId, act.GetProperty("act").GetProperty("sub").GetString());
        // Without a resource the exchanged token still works on Latchkey's API, within its scopes.
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(server.CreateClient(), first.AccessToken!)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await CallMeAsync(server.CreateClient(), second.AccessToken!)).StatusCode);
    }

    [Fact]
    public async Task Revoking_the_sign_in_ends_the_tokens_exchanged_from_it()
    {
        var (app, _, tokens) = await UserTokenAsync("IDENTITY");
        var exchanged = await ExchangeAsync(app, tokens.AccessToken!, scope: "IDENTITY");

        var revoke = await server.CreateClient().PostAsync("/api/oauth/revoke", new FormUrlEncodedContent(ClientParameters(app, tokens.RefreshToken!, "refresh_token")));

        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        Assert.False((await IntrospectAsync(server.CreateClient(), app, exchanged.AccessToken!)).GetProperty("active").GetBoolean());
    }

    [Theory]
    [InlineData("wider scope", "invalid_scope")]
    [InlineData("another app's token", "invalid_grant")]
    [InlineData("another resource", "invalid_target")]
    [InlineData("an app's own token", "invalid_grant")]
    public async Task What_would_widen_a_token_is_refused(string what, string error)
    {
        var (app, _, tokens) = await UserTokenAsync("IDENTITY", resource: what == "another resource" ? Resource : null);
        var subjectToken = tokens.AccessToken!;
        if (what == "another app's token")
        {
            subjectToken = (await UserTokenAsync("IDENTITY")).Tokens.AccessToken!;
        }
        if (what == "an app's own token")
        {
            subjectToken = JsonDocument.Parse(await (await ClientCredentialsAsync(server, app, "IDENTITY")).Content.ReadAsStringAsync())
                .RootElement.GetProperty("access_token").GetString()!;
        }

        var refused = await ExchangeAsync(app, subjectToken,
            scope: what == "wider scope" ? "IDENTITY READ_GRAPH" : "IDENTITY",
            resource: what == "another resource" ? "https://elsewhere.example.com/" : null);

        Assert.True(refused.IsError);
        Assert.Equal(error, refused.TryGet("error"));
    }

    [Fact]
    public async Task An_app_not_registered_for_token_exchange_cannot_use_it()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner);
        var user = await TestAccounts.SignUpAsync(server);
        var (code, verifier) = await GetCodeAsync(user, app, "IDENTITY");
        var tokens = await RedeemCodeAsync(server.CreateClient(), app, code, verifier);

        var refused = await ExchangeAsync(app, tokens.GetProperty("access_token").GetString()!, scope: "IDENTITY");

        Assert.Equal(OidcConstants.TokenErrors.UnauthorizedClient, refused.TryGet("error"));
    }

    [Fact]
    public async Task A_dpop_bound_token_is_exchanged_only_with_a_proof_by_its_key_and_the_new_token_is_bound_too()
    {
        using var key = new DPoPKey();
        using var other = new DPoPKey();
        var (app, _, tokens) = await UserTokenAsync("IDENTITY READ_GRAPH", key: key);
        Assert.Equal("DPoP", tokens.TokenType);
        var tokenUrl = Url("/api/oauth/token");

        var withoutProof = await ExchangeAsync(app, tokens.AccessToken!, scope: "READ_GRAPH");
        var otherKey = await ExchangeAsync(app, tokens.AccessToken!, scope: "READ_GRAPH", proof: other.Proof("POST", tokenUrl, nonce: tokens.DPoPNonce));
        var exchanged = await ExchangeAsync(app, tokens.AccessToken!, scope: "READ_GRAPH", proof: key.Proof("POST", tokenUrl, nonce: tokens.DPoPNonce));

        Assert.Equal("invalid_grant", withoutProof.Error);
        Assert.Equal("invalid_grant", otherKey.Error);
        Assert.False(exchanged.IsError, $"{exchanged.Error} {exchanged.ErrorDescription}");
        Assert.Equal("DPoP", exchanged.TokenType);
        var introspected = await IntrospectAsync(server.CreateClient(), app, exchanged.AccessToken!);
        Assert.Equal(key.Thumbprint, introspected.GetProperty("cnf").GetProperty("jkt").GetString());
    }

    [Fact]
    public async Task Discovery_names_the_token_exchange_grant()
    {
        var discovery = JsonDocument.Parse(await server.CreateClient().GetStringAsync("/.well-known/openid-configuration")).RootElement;

        Assert.Contains(OidcConstants.GrantTypes.TokenExchange, discovery.GetProperty("grant_types_supported").EnumerateArray().Select(g => g.GetString()));
    }

    /// <summary>An app registered for token exchange and the tokens a user's sign-in gave it.</summary>
    private async Task<(RegisteredApp App, TestAccount User, TokenResponse Tokens)> UserTokenAsync(string scope, string? resource = null, DPoPKey? key = null)
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var created = await owner.Session.PostAsJsonAsync("/api/oauth/apps", new
        {
            name = "Agent platform",
            redirect_uris = new[] { RedirectUri },
            scopes = new[] { "IDENTITY", "READ_GRAPH" },
            confidential = true,
            grant_types = new[] { "authorization_code", "refresh_token", "client_credentials", OidcConstants.GrantTypes.TokenExchange },
        });
        Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        var body = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement;
        var app = new RegisteredApp(body.GetProperty("app").GetProperty("client_id").GetString()!, body.GetProperty("client_secret").GetString(), RedirectUri);
        var user = await TestAccounts.SignUpAsync(server);
        var (verifier, challenge) = NewPkce();
        var outcome = await AuthorizeAsync(user.Session, AuthorizeUrl(app, scope, challenge,
            extra: resource is null ? null : new Dictionary<string, string?> { ["resource"] = resource }));
        Task<TokenResponse> RedeemAsync(string? nonce) => server.CreateClient().RequestAuthorizationCodeTokenAsync(new AuthorizationCodeTokenRequest
        {
            Address = Url("/api/oauth/token"), ClientId = app.ClientId, ClientSecret = app.ClientSecret,
            Code = outcome.Query["code"], CodeVerifier = verifier, RedirectUri = app.RedirectUri,
            DPoPProofToken = key?.Proof("POST", Url("/api/oauth/token"), nonce: nonce),
        });
        var tokens = await RedeemAsync(null);
        if (key is not null)
        {
            tokens = await RedeemAsync(tokens.DPoPNonce);
        }
        Assert.False(tokens.IsError, tokens.Error);
        return (app, user, tokens);
    }

    private Task<TokenResponse> ExchangeAsync(RegisteredApp app, string subjectToken, string scope, string? resource = null, string? actorToken = null,
        string? proof = null)
    {
        var request = new TokenExchangeTokenRequest
        {
            Address = Url("/api/oauth/token"),
            ClientId = app.ClientId,
            ClientSecret = app.ClientSecret,
            SubjectToken = subjectToken,
            SubjectTokenType = OidcConstants.TokenTypeIdentifiers.AccessToken,
            Scope = scope,
            Resource = resource,
            DPoPProofToken = proof,
        };
        if (actorToken is not null)
        {
            request.ActorToken = actorToken;
            request.ActorTokenType = OidcConstants.TokenTypeIdentifiers.AccessToken;
        }
        return server.CreateClient().RequestTokenExchangeTokenAsync(request);
    }

    private string Url(string path) => new Uri(server.BaseAddress, path).AbsoluteUri;
}

public sealed class TokenExchangeTestsOnSqlite(SqliteServer server) : TokenExchangeTests(server), IClassFixture<SqliteServer>;

public sealed class TokenExchangeTestsOnPostgres(PostgresServer server) : TokenExchangeTests(server), IClassFixture<PostgresServer>;

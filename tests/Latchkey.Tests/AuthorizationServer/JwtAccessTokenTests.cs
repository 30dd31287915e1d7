using System.Net;
using System.Text.Json;
using Duende.IdentityModel.Client;
using Latchkey.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using static Latchkey.Tests.Infrastructure.OAuthClient;

namespace Latchkey.Tests.AuthorizationServer;

/// <summary>A server set to issue signed JWT access tokens for resource servers that validate locally.</summary>
public sealed class JwtAccessTokenServer : SqliteServer
{
    protected override void ConfigureServer(WebApplicationBuilder builder) =>
        builder.Configuration["AuthorizationServer:AccessTokenFormat"] = "jwt";
}

public sealed class JwtAccessTokenTests(JwtAccessTokenServer server) : IClassFixture<JwtAccessTokenServer>
{
    [Fact]
    public async Task Jwt_access_tokens_are_signed_with_the_published_key_and_accepted_until_revoked()
    {
        var (_, app, _, tokens) = await IssueAsync(server);
        var accessToken = tokens.GetProperty("access_token").GetString()!;

        Assert.Equal(3, accessToken.Split('.').Length);
        Assert.StartsWith("lk_rt_", tokens.GetProperty("refresh_token").GetString());

        // A resource server validates it locally with the JWKS.
        var jwks = new JsonWebKeySet(await server.CreateClient().GetStringAsync("/.well-known/jwks"));
        var validation = await new JsonWebTokenHandler().ValidateTokenAsync(accessToken, new TokenValidationParameters
        {
            ValidIssuer = server.BaseAddress.AbsoluteUri,
            ValidateAudience = false,
            IssuerSigningKeys = jwks.GetSigningKeys(),
        });
        Assert.True(validation.IsValid, validation.Exception?.Message);
        Assert.Equal("IDENTITY", validation.Claims["scope"].ToString()!.Split(' ')[0]);

        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(server.CreateClient(), accessToken)).StatusCode);
        var tampered = accessToken[..^4] + (accessToken[^4] == 'A' ? "BBBB" : "AAAA");
        Assert.Equal(HttpStatusCode.Unauthorized, (await CallMeAsync(server.CreateClient(), tampered)).StatusCode);

        await server.CreateClient().PostAsync("/api/oauth/revoke", new FormUrlEncodedContent(ClientParameters(app, accessToken)));
        Assert.Equal(HttpStatusCode.Unauthorized, (await CallMeAsync(server.CreateClient(), accessToken)).StatusCode);
    }

    [Fact]
    public async Task A_disabled_apps_jwt_access_tokens_are_refused()
    {
        var issued = await IssueAsync(server);
        var (owner, app, accessToken) = (issued.Owner, issued.App, issued.AccessToken);

        await owner.Session.PostAsync($"/api/oauth/apps/{app.ClientId}/disable", null);

        var response = await CallMeAsync(server.CreateClient(), accessToken);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("invalid_token", problem.RootElement.GetProperty("error").GetString());
    }

    [Fact]
    public async Task A_dpop_bound_jwt_access_token_carries_cnf_and_needs_a_proof_by_its_key()
    {
        using var key = new DPoPKey();
        using var other = new DPoPKey();
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner, confidential: false);
        var (code, verifier) = await GetCodeAsync(await TestAccounts.SignUpAsync(server), app);
        var tokens = await DPoPTokenRequests.RedeemCodeWithDPoPAsync(server, app, code, verifier, key);
        var accessToken = tokens.AccessToken!;

        var cnf = new JsonWebToken(accessToken).GetPayloadValue<JsonElement>("cnf");
        Assert.Equal(key.Thumbprint, cnf.GetProperty("jkt").GetString());
        var me = new Uri(server.BaseAddress, "/external-api/v1/me").AbsoluteUri;
        Task<HttpResponseMessage> CallAsync(DPoPKey signer)
        {
            var request = new HttpRequestMessage(HttpMethod.Get, me);
            request.SetDPoPToken(accessToken, signer.Proof("GET", me, accessToken: accessToken));
            return server.CreateClient().SendAsync(request);
        }
        Assert.Equal(HttpStatusCode.OK, (await CallAsync(key)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await CallAsync(other)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await CallMeAsync(server.CreateClient(), accessToken)).StatusCode);
    }
}

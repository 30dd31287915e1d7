using System.Net;
using System.Security.Claims;
using Latchkey.Tests.Infrastructure;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;

namespace Latchkey.Tests.AuthorizationServer;

/// <summary>
/// "Sign in with Latchkey" through ASP.NET Core's own OpenID Connect handler: a real relying
/// party on another loopback port, with nothing hand-written on the protocol side.
/// </summary>
public abstract class OpenIdConnectClientTests(LatchkeyServerFixture server)
{
    [Fact]
    public async Task AspNetCore_OpenIdConnect_handler_signs_a_user_in_with_latchkey()
    {
        // The relying party's redirect URI names its port, so the port is chosen before it starts.
        var port = FreeLoopbackPort();
        var relyingPartyBase = $"http://127.0.0.1:{port}";
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await OAuthClient.RegisterAppAsync(owner, ["openid", "profile", "email", "IDENTITY"], redirectUri: $"{relyingPartyBase}/signin-oidc", name: "Relying Party");
        await using var relyingParty = await StartRelyingPartyAsync(relyingPartyBase, app);

        // One browser for both sites, as a person would have.
        var cookies = new CookieContainer();
        using var browser = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = cookies });
        var user = await SignUpAsync(browser);

        var response = await browser.GetAsync($"{relyingPartyBase}/whoami");
        for (var hops = 0; hops < 10 && response.StatusCode == HttpStatusCode.Redirect; hops++)
        {
            var next = new Uri(response.RequestMessage!.RequestUri!, response.Headers.Location!);
            response = await browser.GetAsync(next);
            if (response.StatusCode == HttpStatusCode.OK && next.AbsolutePath == "/auth/authorize")
            {
                var form = OAuthClient.HiddenInputs(await response.Content.ReadAsStringAsync());
                form["decision"] = "approve";
                response = await browser.PostAsync(new Uri(server.BaseAddress, "/auth/authorize"), new FormUrlEncodedContent(form));
            }
        }

        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{response.StatusCode} {response.RequestMessage?.RequestUri} {body}");
        Assert.Contains($"email={user.Email}", body);
        Assert.Contains("name=OIDC User", body);
        Assert.Contains("zoneinfo=Europe/Berlin", body);
    }

    private async Task<TestAccount> SignUpAsync(HttpClient browser)
    {
        var email = TestAccounts.NewEmail();
        var signUp = new Uri(server.BaseAddress, "/account/sign-up");
        var page = await browser.GetStringAsync(signUp);
        var response = await browser.PostAsync(signUp, new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = Browser.AntiforgeryToken(page),
            ["Input.Email"] = email,
            ["Input.DisplayName"] = "OIDC User",
            ["Input.TimeZone"] = "Europe/Berlin",
            ["Input.Password"] = TestAccounts.Password,
            ["Input.ConfirmPassword"] = TestAccounts.Password,
        }));
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        return new TestAccount(email, TestAccounts.Password, "OIDC User", browser);
    }

    private static int FreeLoopbackPort()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private async Task<WebApplication> StartRelyingPartyAsync(string baseUrl, RegisteredApp registration)
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseUrls(baseUrl);
        // The test reads what it answered; its host's log would only bury the run's output.
        builder.Logging.ClearProviders();
        builder.Services.AddAuthentication(options =>
            {
                options.DefaultScheme = CookieAuthenticationDefaults.AuthenticationScheme;
                options.DefaultChallengeScheme = OpenIdConnectDefaults.AuthenticationScheme;
            })
            .AddCookie()
            .AddOpenIdConnect(options =>
            {
                options.Authority = server.BaseAddress.AbsoluteUri;
                options.RequireHttpsMetadata = false;
                options.ResponseType = OpenIdConnectResponseType.Code;
                options.ResponseMode = OpenIdConnectResponseMode.Query;
                options.UsePkce = true;
                options.Scope.Clear();
                options.Scope.Add("openid");
                options.Scope.Add("profile");
                options.Scope.Add("email");
                options.GetClaimsFromUserInfoEndpoint = true;
                options.MapInboundClaims = false;
                options.SaveTokens = true;
                options.ClaimActions.MapUniqueJsonKey("zoneinfo", "zoneinfo");
                // The test relying party runs on plain http, where Secure cookies would be dropped.
                options.CorrelationCookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                options.CorrelationCookie.SameSite = SameSiteMode.Lax;
                options.NonceCookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                options.NonceCookie.SameSite = SameSiteMode.Lax;
                options.ClientId = registration.ClientId;
                options.ClientSecret = registration.ClientSecret;
            });
        builder.Services.AddAuthorization();
        var app = builder.Build();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapGet("/whoami", (ClaimsPrincipal user) =>
                string.Join('\n', user.Claims.Select(c => $"{c.Type}={c.Value}")))
            .RequireAuthorization();
        await app.StartAsync();
        return app;
    }
}

public sealed class OpenIdConnectClientTestsOnSqlite(SqliteServer server) : OpenIdConnectClientTests(server), IClassFixture<SqliteServer>;

public sealed class OpenIdConnectClientTestsOnPostgres(PostgresServer server) : OpenIdConnectClientTests(server), IClassFixture<PostgresServer>;

using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Duende.IdentityModel;
using Duende.IdentityModel.Client;
using Latchkey.Features.AuthorizationServer.Handlers;
using Latchkey.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using static Latchkey.Tests.Infrastructure.OAuthClient;

namespace Latchkey.Tests.AuthorizationServer;

/// <summary>
/// The device authorization grant (RFC 8628) as a headless agent uses it through Duende.IdentityModel:
/// it asks for a code, the person approves it at /device in a browser signed in to Latchkey, and the
/// agent's polls get authorization_pending, slow_down when too fast, then tokens (or access_denied).
/// </summary>
public abstract class DeviceFlowTests(LatchkeyServerFixture server, FakeTimeProvider pollingClock)
{
    [Fact]
    public async Task A_device_gets_a_code_the_user_approves_it_and_the_device_gets_tokens_that_work()
    {
        var app = await DeviceAppAsync();
        var user = await TestAccounts.SignUpAsync(server);
        var client = server.CreateClient();

        var authorization = await client.RequestDeviceAuthorizationAsync(new DeviceAuthorizationRequest
        {
            Address = Url("/api/oauth/device"), ClientId = app, Scope = "IDENTITY",
        });

        Assert.False(authorization.IsError, authorization.Error);
        Assert.Matches("^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$", authorization.UserCode);
        Assert.Equal(Url("/device"), authorization.VerificationUri);
        Assert.Equal(authorization.UserCode, QueryHelpers.ParseQuery(new Uri(authorization.VerificationUriComplete!).Query)["user_code"].ToString());
        Assert.Equal(5, authorization.Interval);
        Assert.InRange(authorization.ExpiresIn ?? 0, 60, 600);

        var pending = await PollAsync(client, app, authorization.DeviceCode!);
        Assert.Equal(OidcConstants.TokenErrors.AuthorizationPending, pending.Error);

        await ApproveAsync(user, authorization.UserCode!, "approve");

        var tokens = await PollAfterIntervalAsync(client, app, authorization.DeviceCode!);
        Assert.False(tokens.IsError, $"{tokens.Error} {tokens.ErrorDescription}");
        Assert.Equal("IDENTITY", tokens.Scope);
        Assert.False(string.IsNullOrEmpty(tokens.RefreshToken));
        var me = await CallMeAsync(client, tokens.AccessToken!);
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        Assert.Contains(user.Email, await me.Content.ReadAsStringAsync());
        var refreshed = await client.RequestRefreshTokenAsync(new RefreshTokenRequest
        {
            Address = Url("/api/oauth/token"), ClientId = app, RefreshToken = tokens.RefreshToken!, ClientCredentialStyle = ClientCredentialStyle.PostBody,
        });
        Assert.False(refreshed.IsError, refreshed.Error);
        // The device code was good for one set of tokens.
        var again = await PollAfterIntervalAsync(client, app, authorization.DeviceCode!);
        Assert.Equal(OidcConstants.TokenErrors.InvalidGrant, again.Error);
    }

    [Fact]
    public async Task A_device_that_polls_too_fast_is_told_to_slow_down()
    {
        var app = await DeviceAppAsync();
        var client = server.CreateClient();
        var authorization = await client.RequestDeviceAuthorizationAsync(new DeviceAuthorizationRequest
        {
            Address = Url("/api/oauth/device"), ClientId = app, Scope = "IDENTITY",
        });

        var first = await PollAsync(client, app, authorization.DeviceCode!);
        var second = await PollAsync(client, app, authorization.DeviceCode!);

        Assert.Equal(OidcConstants.TokenErrors.AuthorizationPending, first.Error);
        Assert.Equal(OidcConstants.TokenErrors.SlowDown, second.Error);
    }

    [Fact]
    public async Task A_denied_device_gets_access_denied_and_the_log_says_so()
    {
        var app = await DeviceAppAsync();
        var user = await TestAccounts.SignUpAsync(server);
        var client = server.CreateClient();
        var authorization = await client.RequestDeviceAuthorizationAsync(new DeviceAuthorizationRequest
        {
            Address = Url("/api/oauth/device"), ClientId = app, Scope = "IDENTITY",
        });

        await ApproveAsync(user, authorization.UserCode!, "deny");

        var denied = await PollAfterIntervalAsync(client, app, authorization.DeviceCode!);
        Assert.Equal(OidcConstants.TokenErrors.AccessDenied, denied.Error);
    }

    [Fact]
    public async Task The_page_takes_a_code_typed_in_lower_case_and_refuses_one_no_device_waits_for()
    {
        var app = await DeviceAppAsync();
        var user = await TestAccounts.SignUpAsync(server);
        var authorization = await server.CreateClient().RequestDeviceAuthorizationAsync(new DeviceAuthorizationRequest
        {
            Address = Url("/api/oauth/device"), ClientId = app, Scope = "IDENTITY",
        });

        var entry = await user.Session.GetStringAsync("/device");
        var lower = await user.Session.GetAsync("/device?user_code=" + Uri.EscapeDataString(authorization.UserCode!.ToLowerInvariant()));
        var unknown = await user.Session.GetAsync("/device?user_code=BBBB-CCCC");

        Assert.Contains("Type the code your device shows", entry);
        Assert.Equal(HttpStatusCode.OK, lower.StatusCode);
        var consent = await lower.Content.ReadAsStringAsync();
        Assert.Contains("Device app", consent);
        Assert.Contains(authorization.UserCode, consent);
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Contains("That code is not waiting for an answer", await unknown.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_signed_out_person_signs_in_and_comes_back_to_the_same_code()
    {
        var app = await DeviceAppAsync();
        var user = await TestAccounts.SignUpAsync(server);
        var browser = server.CreateClient();
        var authorization = await server.CreateClient().RequestDeviceAuthorizationAsync(new DeviceAuthorizationRequest
        {
            Address = Url("/api/oauth/device"), ClientId = app, Scope = "IDENTITY",
        });

        var toSignIn = await browser.GetAsync(new Uri(authorization.VerificationUriComplete!).PathAndQuery);
        Assert.Equal(HttpStatusCode.Redirect, toSignIn.StatusCode);
        var location = toSignIn.Headers.Location!;
        var signInPath = location.IsAbsoluteUri ? location.PathAndQuery : location.OriginalString;
        var signedIn = await Browser.SubmitFormAsync(browser, signInPath, new Dictionary<string, string>
        {
            ["Input.Email"] = user.Email,
            ["Input.Password"] = user.Password,
        });
        var back = await browser.GetAsync(signedIn.Headers.Location!.OriginalString);

        Assert.Equal(HttpStatusCode.OK, back.StatusCode);
        Assert.Contains(authorization.UserCode!, await back.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task An_app_not_registered_for_the_device_grant_cannot_start_it()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner, confidential: false);

        var authorization = await server.CreateClient().RequestDeviceAuthorizationAsync(new DeviceAuthorizationRequest
        {
            Address = Url("/api/oauth/device"), ClientId = app.ClientId, Scope = "IDENTITY", ClientCredentialStyle = ClientCredentialStyle.PostBody,
        });

        Assert.True(authorization.IsError);
        Assert.Equal(OidcConstants.TokenErrors.UnauthorizedClient, authorization.TryGet("error"));
    }

    [Fact]
    public async Task Discovery_names_the_device_authorization_endpoint_and_grant()
    {
        var discovery = JsonDocument.Parse(await server.CreateClient().GetStringAsync("/.well-known/openid-configuration")).RootElement;

        Assert.Equal(Url("/api/oauth/device"), discovery.GetProperty("device_authorization_endpoint").GetString());
        Assert.Contains(OidcConstants.GrantTypes.DeviceCode, discovery.GetProperty("grant_types_supported").EnumerateArray().Select(g => g.GetString()));
    }

    /// <summary>A public app registered for the device grant only: a command-line tool with no redirect URI.</summary>
    private async Task<string> DeviceAppAsync()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var created = await owner.Session.PostAsJsonAsync("/api/oauth/apps", new
        {
            name = "Device app",
            scopes = new[] { "IDENTITY" },
            confidential = false,
            grant_types = new[] { OidcConstants.GrantTypes.DeviceCode, OidcConstants.GrantTypes.RefreshToken },
        });
        Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        return JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("app").GetProperty("client_id").GetString()!;
    }

    /// <summary>The person at the browser opens the code's page and answers.</summary>
    private static async Task ApproveAsync(TestAccount user, string userCode, string decision)
    {
        var page = await user.Session.GetAsync("/device?user_code=" + Uri.EscapeDataString(userCode));
        var html = await page.Content.ReadAsStringAsync();
        Assert.True(page.StatusCode == HttpStatusCode.OK, html);
        var form = HiddenInputs(html);
        form["decision"] = decision;
        var answered = await user.Session.PostAsync("/device", new FormUrlEncodedContent(form));
        Assert.Equal(HttpStatusCode.Redirect, answered.StatusCode);
        var done = await user.Session.GetStringAsync(answered.Headers.Location!.OriginalString);
        Assert.Contains(decision == "approve" ? "Your device is connected" : "The device was not connected", done);
    }

    private Task<TokenResponse> PollAsync(HttpClient client, string clientId, string deviceCode) =>
        client.RequestDeviceTokenAsync(new DeviceTokenRequest
        {
            Address = Url("/api/oauth/token"), ClientId = clientId, DeviceCode = deviceCode, ClientCredentialStyle = ClientCredentialStyle.PostBody,
        });

    /// <summary>A poll a well-behaved device makes: after the interval since the last one (on the polling clock, not waited for).</summary>
    private Task<TokenResponse> PollAfterIntervalAsync(HttpClient client, string clientId, string deviceCode)
    {
        pollingClock.Advance(TimeSpan.FromSeconds(5));
        return PollAsync(client, clientId, deviceCode);
    }

    private string Url(string path) => new Uri(server.BaseAddress, path).AbsoluteUri;
}

/// <summary>The servers of these tests: the device polling interval runs on a clock the tests advance.</summary>
public sealed class DeviceFlowSqliteServer : SqliteServer
{
    public FakeTimeProvider PollingClock { get; } = new(DateTimeOffset.UtcNow);

    protected override void ConfigureServer(WebApplicationBuilder builder) => builder.Services.AddSingleton(new DevicePolling(PollingClock));
}

public sealed class DeviceFlowPostgresServer : PostgresServer
{
    public FakeTimeProvider PollingClock { get; } = new(DateTimeOffset.UtcNow);

    protected override void ConfigureServer(WebApplicationBuilder builder) => builder.Services.AddSingleton(new DevicePolling(PollingClock));
}

public sealed class DeviceFlowTestsOnSqlite(DeviceFlowSqliteServer server) : DeviceFlowTests(server, server.PollingClock), IClassFixture<DeviceFlowSqliteServer>;

public sealed class DeviceFlowTestsOnPostgres(DeviceFlowPostgresServer server) : DeviceFlowTests(server, server.PollingClock), IClassFixture<DeviceFlowPostgresServer>;

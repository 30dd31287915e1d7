using System.CommandLine;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Duende.IdentityModel;
using Duende.IdentityModel.Client;

namespace Latchkey.Cli;

/// <summary>
/// <c>latchkey test-client</c>: walks a running server through the whole flow the way a third-party
/// app would (discovery, registration, authorization code with PKCE on a loopback redirect, or with
/// <c>--device</c> the device flow, then /external-api/v1/me, refresh, revocation) using
/// Duende.IdentityModel, a standard client library.
/// </summary>
public static class TestClientCommand
{
    // It registers itself like any other client, so its name may not imitate the platform's.
    public const string ClientName = "End-to-end test client";

    public static Command Create()
    {
        var server = new Option<string>("--server") { Description = "The Latchkey server's address.", DefaultValueFactory = _ => "http://localhost:5000" };
        var scope = new Option<string>("--scope") { Description = "Space-separated scopes to ask for.", DefaultValueFactory = _ => "openid profile IDENTITY" };
        var clientId = new Option<string?>("--client-id") { Description = "Reuse this registered public client instead of the one remembered for the server." };
        var open = new Option<bool>("--open") { Description = "Open the authorize URL in the default browser (xdg-open)." };
        var device = new Option<bool>("--device") { Description = "Sign in with the device flow (RFC 8628): print a code to enter at the server's /device page, on any browser." };
        var timeout = new Option<int>("--timeout") { Description = "Seconds to wait for the browser to come back.", DefaultValueFactory = _ => 300 };
        var state = new Option<FileInfo>("--state-file")
        {
            Description = "Where the registered test client's id is remembered between runs.",
            DefaultValueFactory = _ => new FileInfo(Path.Combine("data", "test-client.json")),
        };

        var command = new Command("test-client", "Check a running server end to end as a third-party app would: register, authorize (PKCE or --device), call /me, refresh, revoke.")
        {
            server, scope, clientId, open, device, timeout, state,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            try
            {
                var run = new TestRun(new Uri(parse.GetValue(server)!.TrimEnd('/') + "/"), parse.GetValue(scope)!, parse.GetValue(clientId),
                    parse.GetValue(open), parse.GetValue(device), TimeSpan.FromSeconds(parse.GetValue(timeout)), parse.GetValue(state)!);
                return await RunAsync(run, output, error, cancellationToken);
            }
            catch (HttpRequestException exception)
            {
                await error.WriteLineAsync($"Cannot reach the server: {exception.Message} Is it running? Start it with '{CliInvocation.Of("serve")}'.");
                return CliContext.Failure;
            }
            catch (TimeoutException exception)
            {
                await error.WriteLineAsync(exception.Message);
                return CliContext.Failure;
            }
        });
        return command;
    }

    private sealed record TestRun(Uri Server, string Scope, string? ClientId, bool Open, bool Device, TimeSpan Timeout, FileInfo StateFile)
    {
        /// <summary>The test client is remembered per server and flow: the device flow's has other grants.</summary>
        public string RememberedAs => Device ? Server.AbsoluteUri + "#device" : Server.AbsoluteUri;
    }

    private static async Task<int> RunAsync(TestRun run, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var (server, scope, clientId, stateFile) = (run.Server, run.Scope, run.ClientId, run.StateFile);
        using var http = new HttpClient { BaseAddress = server };

        await output.WriteLineAsync($"1. Discovery at {server}");
        var discovery = await http.GetDiscoveryDocumentAsync(new DiscoveryDocumentRequest
        {
            Address = server.AbsoluteUri,
            Policy = { RequireHttps = server.Scheme == Uri.UriSchemeHttps, AllowHttpOnLoopback = true, ValidateEndpoints = false },
        }, cancellationToken);
        if (discovery.IsError)
        {
            return await FailAsync(error, $"Discovery failed: {discovery.Error}");
        }

        clientId ??= await RememberedClientAsync(stateFile, run.RememberedAs);
        if (clientId is null)
        {
            await output.WriteLineAsync("2. Registering a public test client (RFC 7591)");
            var document = new DynamicClientRegistrationDocument
            {
                ClientName = ClientName,
                Scope = scope,
                Extensions = { ["token_endpoint_auth_method"] = JsonSerializer.SerializeToElement("none") },
            };
            if (run.Device)
            {
                document.GrantTypes.Add(OidcConstants.GrantTypes.DeviceCode);
                document.GrantTypes.Add(OidcConstants.GrantTypes.RefreshToken);
            }
            else
            {
                document.RedirectUris.Add(new Uri("http://127.0.0.1/callback"));
                document.GrantTypes.Add(OidcConstants.GrantTypes.AuthorizationCode);
                document.GrantTypes.Add(OidcConstants.GrantTypes.RefreshToken);
                document.ResponseTypes.Add(OidcConstants.ResponseTypes.Code);
            }
            var registration = await http.RegisterClientAsync(new DynamicClientRegistrationRequest
            {
                Address = discovery.RegistrationEndpoint,
                Document = document,
            }, cancellationToken);
            if (registration.IsError)
            {
                return await FailAsync(error, $"Registration failed: {registration.Error} {registration.ErrorDescription}");
            }
            clientId = registration.ClientId!;
            await RememberClientAsync(stateFile, run.RememberedAs, clientId);
        }
        else
        {
            await output.WriteLineAsync($"2. Reusing the test client {clientId}");
        }

        var tokens = run.Device
            ? await SignInOnADeviceAsync(http, discovery, clientId, run, output, error, cancellationToken)
            : await SignInWithTheBrowserAsync(http, discovery, clientId, run, output, error, cancellationToken);
        if (tokens is null)
        {
            return CliContext.Failure;
        }
        return await UseTheTokensAsync(http, discovery, clientId, tokens, output, error, cancellationToken);
    }

    /// <summary>The authorization code flow with PKCE on a loopback redirect (RFC 8252); null when it failed (said on <paramref name="error"/>).</summary>
    private static async Task<TokenResponse?> SignInWithTheBrowserAsync(HttpClient http, DiscoveryDocumentResponse discovery, string clientId, TestRun run,
        TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var (scope, open, timeout) = (run.Scope, run.Open, run.Timeout);
        // RFC 8252: a loopback redirect on a port of our choosing.
        var port = FreePort();
        var redirectUri = $"http://127.0.0.1:{port}/callback";
        var verifier = CryptoRandom.CreateUniqueId(32);
        var challenge = Common.Pkce.S256Challenge(verifier);
        var expectedState = CryptoRandom.CreateUniqueId(16);
        var authorizeUrl = new RequestUrl(discovery.AuthorizeEndpoint!).CreateAuthorizeUrl(
            clientId: clientId, responseType: OidcConstants.ResponseTypes.Code, scope: scope, redirectUri: redirectUri,
            state: expectedState, codeChallenge: challenge, codeChallengeMethod: OidcConstants.CodeChallengeMethods.Sha256);

        using var listener = new HttpListener();
        listener.Prefixes.Add($"http://127.0.0.1:{port}/callback/");
        listener.Start();
        await output.WriteLineAsync("3. Open this address in a browser, sign in and approve:");
        await output.WriteLineAsync($"   {authorizeUrl}");
        if (open)
        {
            // The loopback redirect comes back to this machine: a browser elsewhere cannot finish this flow.
            await OpenBrowserAsync(authorizeUrl, "Open the address above in a browser on this machine, or sign in from any other device with --device.", output, cancellationToken);
        }

        var callback = await WaitForCallbackAsync(listener, timeout, cancellationToken);
        if (callback["error"] is { } authorizeError)
        {
            return await FailedAsync(error, $"The server answered {authorizeError}: {callback["error_description"]}");
        }
        if (callback["state"] != expectedState)
        {
            return await FailedAsync(error, "The state that came back is not the one sent; refusing the code.");
        }
        if (callback["iss"] is { } iss && iss != discovery.Issuer)
        {
            return await FailedAsync(error, $"The response came from issuer {iss}, not {discovery.Issuer} (RFC 9207); refusing the code.");
        }

        await output.WriteLineAsync("4. Exchanging the code (PKCE)");
        var tokens = await http.RequestAuthorizationCodeTokenAsync(new AuthorizationCodeTokenRequest
        {
            Address = discovery.TokenEndpoint,
            ClientId = clientId,
            Code = callback["code"]!,
            RedirectUri = redirectUri,
            CodeVerifier = verifier,
        }, cancellationToken);
        if (tokens.IsError)
        {
            return await FailedAsync(error, $"The token request failed: {tokens.Error} {tokens.ErrorDescription}");
        }
        return tokens;
    }

    /// <summary>The device flow (RFC 8628): show a code, poll while the person approves it elsewhere; null when it failed.</summary>
    private static async Task<TokenResponse?> SignInOnADeviceAsync(HttpClient http, DiscoveryDocumentResponse discovery, string clientId, TestRun run,
        TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var authorization = await http.RequestDeviceAuthorizationAsync(new DeviceAuthorizationRequest
        {
            Address = discovery.DeviceAuthorizationEndpoint, ClientId = clientId, Scope = run.Scope,
        }, cancellationToken);
        if (authorization.IsError)
        {
            return await FailedAsync(error, $"The device authorization request failed: {authorization.Error} {authorization.ErrorDescription}");
        }
        await output.WriteLineAsync($"3. On any browser, go to {authorization.VerificationUri} and enter the code {authorization.UserCode}, or open:");
        await output.WriteLineAsync($"   {authorization.VerificationUriComplete}");
        if (run.Open)
        {
            await OpenBrowserAsync(authorization.VerificationUriComplete!, "Open the address above on any device that can reach the server.", output, cancellationToken);
        }

        await output.WriteLineAsync("4. Waiting for the approval (polling the token endpoint)");
        var interval = TimeSpan.FromSeconds(authorization.Interval);
        var wait = TimeSpan.FromSeconds(Math.Min(authorization.ExpiresIn ?? 600, run.Timeout.TotalSeconds));
        var deadline = DateTimeOffset.UtcNow + wait;
        while (DateTimeOffset.UtcNow < deadline)
        {
            await Task.Delay(interval, cancellationToken);
            var tokens = await http.RequestDeviceTokenAsync(new DeviceTokenRequest
            {
                Address = discovery.TokenEndpoint, ClientId = clientId, DeviceCode = authorization.DeviceCode!,
            }, cancellationToken);
            if (!tokens.IsError)
            {
                return tokens;
            }
            switch (tokens.Error)
            {
                case OidcConstants.TokenErrors.AuthorizationPending:
                    continue;
                case OidcConstants.TokenErrors.SlowDown:
                    interval += TimeSpan.FromSeconds(5);
                    continue;
                default:
                    return await FailedAsync(error, $"The device was not signed in: {tokens.Error} {tokens.ErrorDescription}");
            }
        }
        throw new TimeoutException($"Nobody approved the code within {wait.TotalSeconds:0} seconds.");
    }

    /// <summary>What an app does with its tokens: call the API, refresh, revoke, and see the revoked one refused.</summary>
    private static async Task<int> UseTheTokensAsync(HttpClient http, DiscoveryDocumentResponse discovery, string clientId, TokenResponse tokens,
        TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        await output.WriteLineAsync($"   access token {Shorten(tokens.AccessToken)} (expires in {tokens.ExpiresIn} s), refresh token {Shorten(tokens.RefreshToken)}, scope '{tokens.Scope}'");

        await output.WriteLineAsync("5. GET /external-api/v1/me");
        var me = await CallMeAsync(http, tokens.AccessToken!, cancellationToken);
        await output.WriteLineAsync($"   {(int)me.StatusCode} {await me.Content.ReadAsStringAsync(cancellationToken)}");

        await output.WriteLineAsync("6. Refreshing (the refresh token rotates)");
        var refreshed = await http.RequestRefreshTokenAsync(new RefreshTokenRequest
        {
            Address = discovery.TokenEndpoint, ClientId = clientId, RefreshToken = tokens.RefreshToken!,
        }, cancellationToken);
        if (refreshed.IsError)
        {
            return await FailAsync(error, $"The refresh failed: {refreshed.Error} {refreshed.ErrorDescription}");
        }
        await output.WriteLineAsync($"   new access token {Shorten(refreshed.AccessToken)}, new refresh token {Shorten(refreshed.RefreshToken)}");

        await output.WriteLineAsync("7. Revoking the tokens");
        foreach (var (token, hint) in new[] { (refreshed.AccessToken!, "access_token"), (refreshed.RefreshToken!, "refresh_token") })
        {
            var revoked = await http.RevokeTokenAsync(new TokenRevocationRequest
            {
                Address = discovery.RevocationEndpoint, ClientId = clientId, Token = token, TokenTypeHint = hint,
            }, cancellationToken);
            if (revoked.IsError)
            {
                return await FailAsync(error, $"Revoking the {hint} failed: {revoked.Error}");
            }
        }
        var after = await CallMeAsync(http, refreshed.AccessToken!, cancellationToken);
        await output.WriteLineAsync($"   /me with the revoked token: {(int)after.StatusCode}");

        var passed = me.IsSuccessStatusCode && after.StatusCode == HttpStatusCode.Unauthorized;
        await output.WriteLineAsync(passed ? "The server passed every step." : "The server did not behave as expected; see the steps above.");
        return passed ? CliContext.Success : CliContext.Failure;
    }

    private static Task<HttpResponseMessage> CallMeAsync(HttpClient http, string accessToken, CancellationToken cancellationToken) =>
        http.SendAsync(new HttpRequestMessage(HttpMethod.Get, "external-api/v1/me")
        {
            Headers = { Authorization = new AuthenticationHeaderValue("Bearer", accessToken) },
        }, cancellationToken);

    private static async Task<System.Collections.Specialized.NameValueCollection> WaitForCallbackAsync(HttpListener listener, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var contextTask = listener.GetContextAsync();
        var finished = await Task.WhenAny(contextTask, Task.Delay(timeout, cancellationToken));
        if (finished != contextTask)
        {
            throw new TimeoutException($"Nobody came back to the loopback redirect within {timeout.TotalSeconds:0} seconds.");
        }
        var context = await contextTask;
        var query = context.Request.QueryString;
        var page = Encoding.UTF8.GetBytes(query["error"] is null
            ? "<!DOCTYPE html><title>Latchkey test client</title><p>Done. You can close this window and return to the terminal."
            : "<!DOCTYPE html><title>Latchkey test client</title><p>The authorization failed; the terminal says why.");
        context.Response.ContentType = "text/html; charset=utf-8";
        await context.Response.OutputStream.WriteAsync(page, cancellationToken);
        context.Response.Close();
        return query;
    }

    private static async Task<string?> RememberedClientAsync(FileInfo stateFile, string key)
    {
        if (!stateFile.Exists)
        {
            return null;
        }
        var remembered = JsonSerializer.Deserialize<Dictionary<string, string>>(await File.ReadAllTextAsync(stateFile.FullName));
        return remembered?.GetValueOrDefault(key);
    }

    private static async Task RememberClientAsync(FileInfo stateFile, string key, string clientId)
    {
        var remembered = stateFile.Exists
            ? JsonSerializer.Deserialize<Dictionary<string, string>>(await File.ReadAllTextAsync(stateFile.FullName)) ?? []
            : [];
        remembered[key] = clientId;
        stateFile.Directory?.Create();
        await File.WriteAllTextAsync(stateFile.FullName, JsonSerializer.Serialize(remembered));
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    private static async Task OpenBrowserAsync(string url, string instead, TextWriter output, CancellationToken cancellationToken)
    {
        if (await BrowserLauncher.TryOpenAsync(url, cancellationToken) is { } why)
        {
            await output.WriteLineAsync($"   No browser was opened: {why}. {instead}");
        }
    }

    // Enough to recognise a token in the output; the whole token is never printed.
    private static string Shorten(string? token) => token is null ? "(none)" : token.Length > 12 ? token[..12] + "…" : token;

    private static async Task<int> FailAsync(TextWriter error, string message)
    {
        await error.WriteLineAsync(message);
        return CliContext.Failure;
    }

    private static async Task<TokenResponse?> FailedAsync(TextWriter error, string message)
    {
        await error.WriteLineAsync(message);
        return null;
    }
}

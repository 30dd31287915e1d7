using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Latchkey.Tests.Infrastructure;

/// <summary>
/// A small but real OAuth 2.0 server on loopback that reproduces providers' quirks: form-encoded
/// token answers (GitHub), tokens nested under <c>authed_user</c> (Slack), Basic-only client
/// authentication (Notion), non-expiring tokens, rotating refresh tokens, <c>invalid_grant</c> and
/// 5xx failures. It approves every authorization request at once and counts what it was asked.
/// It also serves an API below <c>/api/</c> (the proxy's and the test request's target) that
/// accepts the access tokens it issued, or whatever <see cref="ApiAccepts"/> says for typed-in
/// credentials, and records every request it saw.
/// </summary>
public sealed class TestOAuthProvider : IAsyncDisposable
{
    public const string ClientId = "test-client-id";
    public const string ClientSecret = "test-client-secret";

    private WebApplication _app = null!;
    private readonly ConcurrentDictionary<string, (string? Challenge, string RedirectUri, string Scope)> _codes = new();
    private readonly ConcurrentDictionary<string, bool> _refreshTokens = new();
    private int _tokenCounter;

    public string Mode { get; set; } = "json";
    public bool RotateRefreshTokens { get; set; } = true;
    public int ExpiresIn { get; set; } = 3600;
    /// <summary>Lifetime of tokens from a refresh, when it should differ from <see cref="ExpiresIn"/> (which then applies to code grants only).</summary>
    public int? RefreshExpiresIn { get; set; }
    public bool FailRefreshWithInvalidGrant { get; set; }
    public int FailNextTokenCallsWith500 { get; set; }
    /// <summary>What those failing calls answer: 503 by default, or 429 (with <c>Retry-After</c>), 500, ...</summary>
    public int FailureStatus { get; set; } = 503;
    public TimeSpan RefreshDelay { get; set; }
    /// <summary>When set, a refresh waits at the provider until the test completes it.</summary>
    public TaskCompletionSource? RefreshGate { get; set; }

    private int _tokenCalls;
    private int _refreshCalls;
    private int _clientCredentialsCalls;
    private readonly ConcurrentDictionary<string, bool> _validAccessTokens = new();

    /// <summary>For typed-in credentials: whether the API accepts a request's headers (by default, a bearer token it issued).</summary>
    public Func<IHeaderDictionary, bool>? ApiAccepts { get; set; }

    /// <summary>Every API request: method, path and query, and its headers.</summary>
    public ConcurrentQueue<(string Method, string PathAndQuery, Dictionary<string, string> Headers)> ApiRequests { get; } = new();

    public int ClientCredentialsCalls => Volatile.Read(ref _clientCredentialsCalls);

    /// <summary>Makes every access token issued so far fail at the API (401), as a provider does when it revokes early.</summary>
    public void InvalidateAccessTokens() => _validAccessTokens.Clear();

    public int TokenCalls => Volatile.Read(ref _tokenCalls);
    public int RefreshCalls => Volatile.Read(ref _refreshCalls);
    public ConcurrentBag<string> Revoked { get; } = [];
    public ConcurrentBag<string> VerifiedPkce { get; } = [];
    public string? LastIssuedAccessToken { get; private set; }
    public string? LastIssuedRefreshToken { get; private set; }

    public Uri BaseAddress { get; private set; } = null!;

    public static async Task<TestOAuthProvider> StartAsync()
    {
        var provider = new TestOAuthProvider();
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        // The test reads what it answered; its host's log would only bury the run's output.
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.Run(provider.DispatchAsync);
        await app.StartAsync();
        provider._app = app;
        provider.BaseAddress = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        return provider;
    }

    /// <summary>A custom provider definition pointing here, in the shape POST /mcp/providers takes.</summary>
    public object Definition(string? tokenPath = null, string tokenAuth = "post", bool pkce = true) => new
    {
        name = "Test provider",
        authorize_url = $"{BaseAddress}authorize",
        token_url = $"{BaseAddress}token",
        revocation_url = $"{BaseAddress}revoke",
        userinfo_url = tokenPath is null ? $"{BaseAddress}userinfo" : null,
        account_id = tokenPath is null ? "id" : "authed_user.id",
        account_label = tokenPath is null ? "login" : "team.name",
        default_scopes = new[] { "read", "write" },
        token_path = tokenPath,
        token_auth = tokenAuth,
        pkce,
        expires = true,
        refreshable = true,
        api_base_url = $"{BaseAddress}api",
    };

    /// <summary>A typed-in (or client-credentials) provider definition whose API is here; <paramref name="extra"/> adds or replaces fields.</summary>
    public Dictionary<string, object?> TypedDefinition(string authType, object? extra = null)
    {
        var definition = new Dictionary<string, object?>
        {
            ["name"] = $"Test {authType} provider",
            ["auth_type"] = authType,
            ["api_base_url"] = $"{BaseAddress}api",
            ["test_request"] = new { method = "GET", path = "/me" },
        };
        if (authType == "client_credentials")
        {
            definition["token_url"] = $"{BaseAddress}token";
            definition["token_auth"] = "basic";
            definition["expires"] = true;
        }
        foreach (var property in System.Text.Json.JsonSerializer.SerializeToElement(extra ?? new { }).EnumerateObject())
        {
            definition[property.Name] = property.Value;
        }
        return definition;
    }

    private Task DispatchAsync(HttpContext context) => context.Request.Path.Value switch
    {
        "/authorize" => AuthorizeAsync(context),
        "/token" => TokenAsync(context),
        "/revoke" => RevokeAsync(context),
        "/userinfo" => UserInfoAsync(context),
        { } path when path.StartsWith("/api/", StringComparison.Ordinal) => ApiAsync(context),
        _ => NotFound(context),
    };

    private static Task NotFound(HttpContext context)
    {
        context.Response.StatusCode = 404;
        return Task.CompletedTask;
    }

    private Task AuthorizeAsync(HttpContext context)
    {
        var query = context.Request.Query;
        var code = "code-" + Guid.NewGuid().ToString("N");
        _codes[code] = (query["code_challenge"], query["redirect_uri"]!, query["scope"].ToString() + query["user_scope"]);
        context.Response.Redirect(QueryHelpers.AddQueryString(query["redirect_uri"]!, new Dictionary<string, string?> { ["code"] = code, ["state"] = query["state"] }));
        return Task.CompletedTask;
    }

    private async Task TokenAsync(HttpContext context)
    {
        Interlocked.Increment(ref _tokenCalls);
        if (FailNextTokenCallsWith500 > 0)
        {
            FailNextTokenCallsWith500--;
            context.Response.StatusCode = FailureStatus;
            if (FailureStatus == 429)
            {
                context.Response.Headers.RetryAfter = "1";
            }
            await context.Response.WriteAsync("temporarily unavailable");
            return;
        }
        var form = await context.Request.ReadFormAsync();
        var (clientId, clientSecret) = ClientCredentials(context, form);
        if (clientId != ClientId || clientSecret != ClientSecret || (Mode == "basic" && !context.Request.Headers.Authorization.ToString().StartsWith("Basic ", StringComparison.Ordinal)))
        {
            await ErrorAsync(context, 401, "invalid_client");
            return;
        }

        string scope;
        switch (form["grant_type"].ToString())
        {
            case "authorization_code":
                if (!_codes.TryRemove(form["code"]!, out var grant) || grant.RedirectUri != form["redirect_uri"])
                {
                    await ErrorAsync(context, 400, "invalid_grant");
                    return;
                }
                if (grant.Challenge is { Length: > 0 } challenge)
                {
                    var verifier = form["code_verifier"].ToString();
                    var computed = Convert.ToBase64String(SHA256.HashData(Encoding.ASCII.GetBytes(verifier))).TrimEnd('=').Replace('+', '-').Replace('/', '_');
                    if (computed != challenge)
                    {
                        await ErrorAsync(context, 400, "invalid_grant");
                        return;
                    }
                    VerifiedPkce.Add(verifier);
                }
                scope = grant.Scope;
                break;
            case "refresh_token":
                Interlocked.Increment(ref _refreshCalls);
                if (RefreshDelay > TimeSpan.Zero)
                {
                    await Task.Delay(RefreshDelay);
                }
                if (RefreshGate is { } gate)
                {
                    await gate.Task;
                }
                if (FailRefreshWithInvalidGrant || !_refreshTokens.ContainsKey(form["refresh_token"]!))
                {
                    await ErrorAsync(context, 400, "invalid_grant");
                    return;
                }
                if (RotateRefreshTokens)
                {
                    _refreshTokens.TryRemove(form["refresh_token"]!, out _);
                }
                scope = "read write";
                break;
            case "client_credentials":
                Interlocked.Increment(ref _clientCredentialsCalls);
                scope = form["scope"].ToString();
                break;
            default:
                await ErrorAsync(context, 400, "unsupported_grant_type");
                return;
        }

        var number = Interlocked.Increment(ref _tokenCounter);
        var accessToken = $"provider-access-{number}-{Guid.NewGuid():N}";
        LastIssuedAccessToken = accessToken;
        _validAccessTokens[accessToken] = true;
        string? refreshToken = null;
        if (form["grant_type"] == "authorization_code" || (RotateRefreshTokens && form["grant_type"] == "refresh_token"))
        {
            refreshToken = $"provider-refresh-{number}-{Guid.NewGuid():N}";
            _refreshTokens[refreshToken] = true;
            LastIssuedRefreshToken = refreshToken;
        }
        var fields = new Dictionary<string, object?> { ["access_token"] = accessToken, ["token_type"] = "bearer", ["scope"] = scope.Replace(' ', ',') };
        if (refreshToken is not null)
        {
            fields["refresh_token"] = refreshToken;
        }
        if (Mode != "non_expiring")
        {
            fields["expires_in"] = form["grant_type"] == "refresh_token" && RefreshExpiresIn is { } refreshed ? refreshed : ExpiresIn;
        }

        switch (Mode)
        {
            case "form":
                context.Response.ContentType = "application/x-www-form-urlencoded";
                await context.Response.WriteAsync(string.Join('&', fields.Select(f => $"{f.Key}={Uri.EscapeDataString(f.Value!.ToString()!)}")));
                return;
            case "slack":
                await context.Response.WriteAsJsonAsync(new Dictionary<string, object?>
                {
                    ["ok"] = true,
                    ["access_token"] = "xoxb-bot-token-not-the-users",
                    ["team"] = new { id = "T1", name = "Test Team" },
                    ["authed_user"] = new Dictionary<string, object?>(fields) { ["id"] = "U123" },
                });
                return;
            default:
                await context.Response.WriteAsJsonAsync(fields);
                return;
        }
    }

    private async Task RevokeAsync(HttpContext context)
    {
        var form = await context.Request.ReadFormAsync();
        Revoked.Add(form["token"]!);
        _refreshTokens.TryRemove(form["token"]!, out _);
    }

    private static Task UserInfoAsync(HttpContext context) =>
        context.Request.Headers.Authorization.ToString().StartsWith("Bearer provider-access-", StringComparison.Ordinal)
            ? context.Response.WriteAsJsonAsync(new { id = 4242, login = "octo-tester" })
            : NotFound(context);

    /// <summary>
    /// The API: <c>/api/echo</c> answers what it received; <c>/api/stream?chunks=n</c> answers n
    /// chunks 50 ms apart; <c>/api/upload</c> answers the byte count and SHA-256 of the body;
    /// <c>/api/redirect</c> redirects elsewhere; any other path answers <c>{}</c>.
    /// </summary>
    private async Task ApiAsync(HttpContext context)
    {
        var request = context.Request;
        ApiRequests.Enqueue((request.Method, request.Path + request.QueryString, request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase)));
        var accepted = ApiAccepts?.Invoke(request.Headers)
                       ?? (request.Headers.Authorization.ToString() is { } authorization && authorization.StartsWith("Bearer ", StringComparison.Ordinal)
                           && _validAccessTokens.ContainsKey(authorization[7..]));
        if (!accepted)
        {
            context.Response.StatusCode = 401;
            context.Response.Headers.WWWAuthenticate = "Bearer error=\"invalid_token\"";
            await context.Response.WriteAsJsonAsync(new { message = "Bad credentials" });
            return;
        }
        switch (request.Path.Value)
        {
            case "/api/echo":
                var body = await new StreamReader(request.Body).ReadToEndAsync();
                await context.Response.WriteAsJsonAsync(new { method = request.Method, path = request.Path.Value, query = request.QueryString.Value, body });
                return;
            case "/api/stream":
                var chunks = int.TryParse(request.Query["chunks"], out var n) ? n : 3;
                context.Response.ContentType = "text/plain";
                for (var i = 0; i < chunks; i++)
                {
                    await context.Response.WriteAsync($"chunk {i}\n");
                    await context.Response.Body.FlushAsync();
                    await Task.Delay(50);
                }
                return;
            case "/api/upload":
                using (var sha = SHA256.Create())
                {
                    var buffer = new byte[81920];
                    long total = 0;
                    int read;
                    while ((read = await request.Body.ReadAsync(buffer)) > 0)
                    {
                        sha.TransformBlock(buffer, 0, read, null, 0);
                        total += read;
                    }
                    sha.TransformFinalBlock([], 0, 0);
                    await context.Response.WriteAsJsonAsync(new { bytes = total, sha256 = Convert.ToHexString(sha.Hash!) });
                }
                return;
            case "/api/redirect":
                context.Response.Redirect("https://elsewhere.example/steal");
                return;
            default:
                await context.Response.WriteAsJsonAsync(new { });
                return;
        }
    }

    private static (string? Id, string? Secret) ClientCredentials(HttpContext context, IFormCollection form)
    {
        var header = context.Request.Headers.Authorization.ToString();
        if (header.StartsWith("Basic ", StringComparison.Ordinal))
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header[6..])).Split(':', 2);
            return (Uri.UnescapeDataString(decoded[0]), Uri.UnescapeDataString(decoded[1]));
        }
        return (form["client_id"], form["client_secret"]);
    }

    private static async Task ErrorAsync(HttpContext context, int status, string error)
    {
        context.Response.StatusCode = status;
        await context.Response.WriteAsJsonAsync(new { error, error_description = $"test provider says {error}" });
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Threading.RateLimiting;
using Latchkey.Common;
using Latchkey.Features.Accounts;
using Latchkey.Features.AuthorizationServer;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.RateLimits;

/// <summary>
/// Token buckets (System.Threading.RateLimiting) per client id, API key and source address in
/// front of the token, authorize, sign-in and broker endpoints. It runs before OpenIddict, which
/// handles the OAuth endpoints outside routing, so it is middleware rather than endpoint
/// metadata. A refused request gets 429 with <c>Retry-After</c>, in the error shape its
/// endpoint uses: OAuth error JSON, the broker's, or problem details.
/// </summary>
public sealed partial class RequestRateLimiter : IAsyncDisposable
{
    private enum Area { None, Token, Authorize, SignIn, Broker }

    private const int MaxFormBytesRead = 16 * 1024;

    private static readonly string[] SignInPaths =
    [
        AccountsSetup.SignInPath, AccountsSetup.SignUpPath, AccountsSetup.ForgotPasswordPath, AccountsSetup.ResetPasswordPath, AccountsSetup.ConfirmEmailPath,
    ];

    private readonly PartitionedRateLimiter<string> _limiter;
    private readonly Dictionary<string, RateLimit> _limits;
    private readonly ILogger<RequestRateLimiter> _logger;

    public RequestRateLimiter(IOptions<RateLimitOptions> options, ILogger<RequestRateLimiter> logger)
    {
        var settings = options.Value;
        _logger = logger;
        _limits = new Dictionary<string, RateLimit>(StringComparer.Ordinal)
        {
            ["token-client"] = settings.TokenPerClient,
            ["token-address"] = settings.TokenPerAddress,
            ["authorize-address"] = settings.AuthorizePerAddress,
            ["sign-in-address"] = settings.SignInPerAddress,
            ["broker-key"] = settings.BrokerPerApiKey,
            ["broker-address"] = settings.BrokerPerAddress,
        };
        // Partitions are "limit|caller"; idle ones are dropped by the partitioned limiter.
        _limiter = PartitionedRateLimiter.Create<string, string>(key =>
            RateLimitPartition.GetTokenBucketLimiter(key, partition => Bucket(_limits[partition[..partition.IndexOf('|')]])));
    }

    public ValueTask DisposeAsync() => _limiter.DisposeAsync();

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var request = context.Request;
        var area = AreaOf(request);
        if (area == Area.None)
        {
            await next(context);
            return;
        }
        var address = context.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        var refusal = area switch
        {
            // The address first: a caller over its limit creates no further partitions and has no body read.
            Area.Token => Acquire("token-address", address) ?? Acquire("token-client", ClientPartition(await TokenClientIdAsync(request), address)),
            Area.Authorize => Acquire("authorize-address", address),
            Area.SignIn => Acquire("sign-in-address", address),
            _ => Acquire("broker-address", address) ?? Acquire("broker-key", ApiKeyPartition(request)),
        };
        if (refusal is not { } retryAfter)
        {
            await next(context);
            return;
        }
        LogRefused(_logger, area, retryAfter.TotalSeconds);
        await RefuseAsync(context, area, retryAfter);
    }

    private static Area AreaOf(HttpRequest request)
    {
        var path = request.Path;
        if (HttpMethods.IsPost(request.Method) && (path.Equals(AuthorizationServerSetup.TokenPath, StringComparison.OrdinalIgnoreCase)
            || path.Equals(AuthorizationServerSetup.PushedAuthorizationPath, StringComparison.OrdinalIgnoreCase)
            || path.Equals(AuthorizationServerSetup.DeviceAuthorizationPath, StringComparison.OrdinalIgnoreCase)))
        {
            return Area.Token;
        }
        // The device page too: each try of a user code counts, so codes cannot be guessed quickly.
        if (path.Equals(AuthorizationServerSetup.AuthorizePath, StringComparison.OrdinalIgnoreCase)
            || path.Equals(AuthorizationServerSetup.DeviceVerificationPath, StringComparison.OrdinalIgnoreCase))
        {
            return Area.Authorize;
        }
        if (HttpMethods.IsPost(request.Method))
        {
            foreach (var signIn in SignInPaths)
            {
                if (path.Equals(signIn, StringComparison.OrdinalIgnoreCase))
                {
                    return Area.SignIn;
                }
            }
        }
        if (path.StartsWithSegments("/mcp/oauth", StringComparison.OrdinalIgnoreCase)
            || path.StartsWithSegments("/mcp/credentials", StringComparison.OrdinalIgnoreCase)
            || path.StartsWithSegments("/mcp/providers", StringComparison.OrdinalIgnoreCase)
            || path.StartsWithSegments("/mcp/proxy", StringComparison.OrdinalIgnoreCase)
            || path.StartsWithSegments("/mcp/connect-sessions", StringComparison.OrdinalIgnoreCase)
            || path.StartsWithSegments("/mcp/webhooks", StringComparison.OrdinalIgnoreCase)
            || path.StartsWithSegments("/connect", StringComparison.OrdinalIgnoreCase))
        {
            return Area.Broker;
        }
        return Area.None;
    }

    /// <summary>The retry delay when the caller's bucket is empty; null when the request may go on (or has no such caller).</summary>
    private TimeSpan? Acquire(string limit, string? caller)
    {
        if (caller is null)
        {
            return null;
        }
        using var lease = _limiter.AttemptAcquire($"{limit}|{caller}");
        if (lease.IsAcquired)
        {
            return null;
        }
        return lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) && retryAfter > TimeSpan.Zero ? retryAfter : TimeSpan.FromSeconds(1);
    }

    /// <summary>The client id of a token request: from HTTP Basic credentials or the form (read once; OpenIddict reads the buffered copy).</summary>
    private static async Task<string?> TokenClientIdAsync(HttpRequest request)
    {
        var authorization = request.Headers.Authorization;
        if (authorization.Count == 1 && BasicClientCredentials.IsBasic(authorization[0]))
        {
            var (basicClientId, _) = BasicClientCredentials.Parse(authorization[0]);
            return string.IsNullOrEmpty(basicClientId) ? null : basicClientId;
        }
        // Only a small url-encoded body is read here (multipart and large forms are left to OpenIddict).
        if (!request.HasFormContentType || request.ContentLength is not (> 0 and <= MaxFormBytesRead)
            || !request.ContentType!.StartsWith("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }
        // A malformed body is OpenIddict's to refuse (RequestForms remembers it); the address limit still applies.
        var form = await RequestForms.TryReadAsync(request, request.HttpContext.RequestAborted);
        return form?["client_id"] is { Count: 1 } clientId ? clientId.ToString() : null;
    }

    /// <summary>
    /// A client's bucket is per client and source address: client ids are public, and a bucket
    /// keyed on the id alone would let anyone use up a real client's requests. The id is
    /// digested, so an attacker's huge ids cost the limiter's table a few bytes.
    /// </summary>
    private static string? ClientPartition(string? clientId, string address) =>
        clientId is null ? null : Digest(clientId) + "|" + address;

    private static string Digest(string value) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(value)), 0, 16);

    /// <summary>Partitions by a digest of the key, so the limiter's table holds no usable secret.</summary>
    private static string? ApiKeyPartition(HttpRequest request)
    {
        var key = request.Headers["X-API-Key"].ToString();
        return key.Length == 0 ? null : Digest(key);
    }

    private static TokenBucketRateLimiterOptions Bucket(RateLimit limit) => limit.PerMinute >= 60
        ? new TokenBucketRateLimiterOptions
        {
            TokenLimit = limit.Burst,
            TokensPerPeriod = (limit.PerMinute + 59) / 60,
            ReplenishmentPeriod = TimeSpan.FromSeconds(1),
            QueueLimit = 0,
        }
        : new TokenBucketRateLimiterOptions
        {
            TokenLimit = limit.Burst,
            TokensPerPeriod = 1,
            ReplenishmentPeriod = TimeSpan.FromMinutes(1) / limit.PerMinute,
            QueueLimit = 0,
        };

    private static async Task RefuseAsync(HttpContext context, Area area, TimeSpan retryAfter)
    {
        var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
        var message = $"Too many requests; try again in {seconds} s.";
        context.RequestServices.GetRequiredService<Telemetry.LatchkeyMetrics>().RateLimitRefused(area.ToString().ToLowerInvariant());
        context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        context.Response.Headers.CacheControl = "no-store";
        switch (area)
        {
            case Area.Token or Area.Authorize:
                // RFC 6749 has no code for this; temporarily_unavailable is the nearest registered one.
                context.Response.StatusCode = StatusCodes.Status429TooManyRequests;
                await context.Response.WriteAsJsonAsync(new Dictionary<string, string>
                {
                    ["error"] = "temporarily_unavailable",
                    ["error_description"] = message,
                });
                break;
            case Area.Broker when context.GetEndpoint()?.Metadata.GetMetadata<Common.IErrorShape>() is { } shape:
                // The agent API answers in its own shape.
                await shape.WriteAsync(context, StatusCodes.Status429TooManyRequests, "rate_limited", message);
                break;
            default:
                await Common.Problems.WriteAsync(context, StatusCodes.Status429TooManyRequests, message);
                break;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Rate limit reached on the {Area} endpoints; told to retry after {Seconds:F0} s")]
    private static partial void LogRefused(ILogger logger, Area area, double seconds);
}

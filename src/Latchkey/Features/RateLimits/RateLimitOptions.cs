using System.ComponentModel.DataAnnotations;

namespace Latchkey.Features.RateLimits;

/// <summary>
/// Bound from <c>RateLimits</c>: how many requests each caller may make to the endpoints that
/// attackers aim at. Limits are per node; with several nodes behind a load balancer a caller
/// gets up to the limit on each.
/// </summary>
public sealed class RateLimitOptions
{
    public const string SectionName = "RateLimits";

    public bool Enabled { get; set; } = true;

    /// <summary><c>POST /api/oauth/token</c>, per client id and source address (client ids are public: a bucket per id alone would let anyone exhaust it).</summary>
    [Required]
    public RateLimit TokenPerClient { get; set; } = new() { PerMinute = 600, Burst = 100 };

    /// <summary><c>POST /api/oauth/token</c>, per source address.</summary>
    [Required]
    public RateLimit TokenPerAddress { get; set; } = new() { PerMinute = 1200, Burst = 200 };

    /// <summary><c>/auth/authorize</c>, per source address.</summary>
    [Required]
    public RateLimit AuthorizePerAddress { get; set; } = new() { PerMinute = 120, Burst = 30 };

    /// <summary>Sign-in, sign-up and password-reset form posts, per source address.</summary>
    [Required]
    public RateLimit SignInPerAddress { get; set; } = new() { PerMinute = 20, Burst = 10 };

    /// <summary>The credential broker (<c>/mcp/oauth</c>, <c>/mcp/credentials</c>, <c>/mcp/providers</c>), per API key.</summary>
    [Required]
    public RateLimit BrokerPerApiKey { get; set; } = new() { PerMinute = 1200, Burst = 200 };

    /// <summary>The credential broker, per source address.</summary>
    [Required]
    public RateLimit BrokerPerAddress { get; set; } = new() { PerMinute = 2400, Burst = 400 };
}

/// <summary>A token bucket: <see cref="Burst"/> requests at once, refilled at <see cref="PerMinute"/>.</summary>
public sealed class RateLimit
{
    [Range(1, 10_000_000)]
    public int PerMinute { get; set; }

    [Range(1, 10_000_000)]
    public int Burst { get; set; }
}

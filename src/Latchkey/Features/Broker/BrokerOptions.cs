using System.ComponentModel.DataAnnotations;

namespace Latchkey.Features.Broker;

/// <summary>The credential broker. Bound from the <c>Broker</c> section.</summary>
public sealed class BrokerOptions
{
    public const string SectionName = "Broker";

    /// <summary>How long an OAuth flow's state stays usable.</summary>
    [Range(30, 3600)]
    public int StateLifetimeSeconds { get; set; } = 600;

    /// <summary>
    /// A token expiring within this margin is refreshed before it is handed out; the margin is capped
    /// at half the token's lifetime (a 60-second token is refreshed 30 s before it expires).
    /// </summary>
    [Range(0, 3600)]
    public int RefreshMarginSeconds { get; set; } = 300;

    /// <summary>
    /// A forced refresh (<c>/mcp/oauth/refresh-token</c>) within this many seconds of a successful one
    /// returns that one instead of calling the provider again: one provider call per burst, on every node.
    /// </summary>
    [Range(0, 300)]
    public int ForcedRefreshCoalesceSeconds { get; set; } = 5;

    /// <summary>
    /// How often the node that leads the jobs refreshes the credentials that would expire before its
    /// next run; 0 turns it off (tokens are then refreshed only when read).
    /// </summary>
    [Range(0, 86_400)]
    public int ProactiveRefreshSeconds { get; set; } = 60;

    /// <summary>How long a connect session's link stays usable after the app creates it.</summary>
    [Range(1, 1440)]
    public int ConnectSessionMinutes { get; set; } = 30;

    /// <summary>
    /// How often each active credential is tried with its provider's test request (on the node that
    /// leads the jobs, up to 200 a run); a refusal marks it needs_reauth. 0 turns the check off.
    /// </summary>
    [Range(0, 30 * 86_400)]
    public int HealthCheckSeconds { get; set; } = 6 * 3600;

    /// <summary>Timeout of one request to a provider.</summary>
    [Range(1, 120)]
    public int ProviderTimeoutSeconds { get; set; } = 15;

    /// <summary>How long the proxy waits for a provider's answer to begin (the body then streams as long as it takes).</summary>
    [Range(1, 600)]
    public int ProxyTimeoutSeconds { get; set; } = 60;

    /// <summary>The largest request body the proxy forwards (uploads stream through; they are not held in memory).</summary>
    [Range(1024, 10L * 1024 * 1024 * 1024)]
    public long ProxyMaxRequestBodyBytes { get; set; } = 100L * 1024 * 1024;

    /// <summary>Attempts for a provider call that times out or answers 429/5xx.</summary>
    [Range(1, 10)]
    public int ProviderAttempts { get; set; } = 3;

    /// <summary>
    /// Allow provider URLs on private, loopback and other special-purpose addresses, and plain http.
    /// Off in production (<see cref="Common.OutboundAddressGuard"/>); on for tests and lab setups.
    /// </summary>
    public bool AllowPrivateNetworks { get; set; }

    /// <summary>Provider instances created from configuration (global to the deployment).</summary>
    public List<ConfiguredProvider> Providers { get; set; } = [];
}

public sealed class ConfiguredProvider
{
    /// <summary>The catalog key (github, google, ...).</summary>
    public string Catalog { get; set; } = "";
    public string ClientId { get; set; } = "";
    public string ClientSecret { get; set; } = "";
    public string? Name { get; set; }
    public Dictionary<string, string> Template { get; set; } = [];
}

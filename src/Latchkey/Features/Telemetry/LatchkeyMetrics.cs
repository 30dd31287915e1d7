using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Latchkey.Features.Telemetry;

/// <summary>
/// Latchkey's own meters (docs/operations.md has the list). Tags are ids and outcomes, never a
/// token or secret. Without an exporter (Telemetry settings) nothing listens and recording costs
/// next to nothing.
/// </summary>
public sealed class LatchkeyMetrics
{
    public const string MeterName = "Latchkey";

    private readonly Counter<long> _tokensIssued;
    private readonly Counter<long> _tokensRevoked;
    private readonly Counter<long> _introspections;
    private readonly Counter<long> _brokerRefreshes;
    private readonly Counter<long> _gatewayCalls;
    private readonly Histogram<double> _gatewayCallDuration;
    private readonly Counter<long> _rateLimitRefusals;

    public LatchkeyMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _tokensIssued = meter.CreateCounter<long>("latchkey.tokens.issued", "{token}",
            "Access tokens issued at the token endpoint, by grant type (refresh_token for a refresh) and client.");
        _tokensRevoked = meter.CreateCounter<long>("latchkey.tokens.revoked", "{revocation}",
            "Revocations, by client and reason (revocation_endpoint, code_reuse, refresh_token_reuse, user_revoked_app).");
        _introspections = meter.CreateCounter<long>("latchkey.introspections", "{request}",
            "Introspection answers, by client and whether the token was active.");
        _brokerRefreshes = meter.CreateCounter<long>("latchkey.broker.refreshes", "{refresh}",
            "Broker credential refreshes, by provider and outcome (refreshed, failed, needs_reauth).");
        _gatewayCalls = meter.CreateCounter<long>("latchkey.gateway.calls", "{call}",
            "MCP tool calls through the gateway, by server, tool and outcome.");
        _gatewayCallDuration = meter.CreateHistogram<double>("latchkey.gateway.call.duration", "s",
            "Duration of MCP tool calls through the gateway, by server, tool and outcome.");
        _rateLimitRefusals = meter.CreateCounter<long>("latchkey.rate_limit.refusals", "{request}",
            "Requests refused by a rate limit, by policy.");
        Meter = meter;
    }

    /// <summary>The meter, for gauges that features observe (<see cref="TelemetrySetup"/>).</summary>
    public Meter Meter { get; }

    public void TokenIssued(string? grantType, string? clientId)
    {
        _tokensIssued.Add(1, new("grant_type", grantType ?? "unknown"), new("client_id", clientId ?? "unknown"));
        TraceTags.Client(clientId);
    }

    public void TokenRevoked(string? clientId, string reason) =>
        _tokensRevoked.Add(1, new("client_id", clientId ?? "unknown"), new("reason", reason));

    public void Introspected(string? clientId, bool active)
    {
        _introspections.Add(1, new("client_id", clientId ?? "unknown"), new("active", active));
        TraceTags.Client(clientId);
    }

    public void BrokerRefreshed(string provider, string outcome) =>
        _brokerRefreshes.Add(1, new("provider", provider), new("outcome", outcome));

    public void GatewayCall(string serverId, string tool, string outcome, TimeSpan duration)
    {
        var tags = new TagList { { "server", serverId }, { "tool", tool }, { "outcome", outcome } };
        _gatewayCalls.Add(1, tags);
        _gatewayCallDuration.Record(duration.TotalSeconds, tags);
    }

    public void RateLimitRefused(string policy) => _rateLimitRefusals.Add(1, new KeyValuePair<string, object?>("policy", policy));
}

/// <summary>
/// Names a request's trace after who and what it concerns: the client, the user, the credential,
/// the tool. Ids only: a trace never carries a token (docs/operations.md).
/// </summary>
public static class TraceTags
{
    public const string ClientId = "latchkey.client_id";
    public const string UserId = "enduser.id";
    public const string CredentialId = "latchkey.credential_id";
    public const string McpServer = "latchkey.mcp.server";
    public const string McpTool = "latchkey.mcp.tool";

    public static void Client(string? clientId) => Set(ClientId, clientId);

    public static void Credential(string? credentialId) => Set(CredentialId, credentialId);

    public static void Tool(string serverId, string tool)
    {
        Set(McpServer, serverId);
        Set(McpTool, tool);
    }

    public static void Set(string name, string? value)
    {
        if (value is not null && Activity.Current is { IsAllDataRequested: true } activity)
        {
            activity.SetTag(name, value);
        }
    }
}

using System.ComponentModel.DataAnnotations;

namespace Latchkey.Features.Webhooks;

/// <summary>Webhook delivery. Bound from the <c>Webhooks</c> section.</summary>
public sealed class WebhookOptions
{
    public const string SectionName = "Webhooks";

    /// <summary>Attempts before a delivery is marked failed (it can still be redelivered by hand).</summary>
    [Range(1, 20)]
    public int MaxAttempts { get; set; } = 8;

    /// <summary>The wait before the first retry; each later one waits five times longer, at most six hours.</summary>
    [Range(1, 3600)]
    public int FirstRetrySeconds { get; set; } = 10;

    /// <summary>How often every node looks for due deliveries (a new event on the node is sent at once).</summary>
    [Range(1, 300)]
    public int PollSeconds { get; set; } = 2;

    /// <summary>Timeout of one delivery attempt.</summary>
    [Range(1, 120)]
    public int TimeoutSeconds { get; set; } = 10;

    /// <summary>Allow endpoints on private and loopback addresses, and plain http (labs and tests).</summary>
    public bool AllowPrivateNetworks { get; set; }

    /// <summary>Delivered and failed deliveries are removed after this many days.</summary>
    [Range(1, 365)]
    public int KeepDays { get; set; } = 30;
}

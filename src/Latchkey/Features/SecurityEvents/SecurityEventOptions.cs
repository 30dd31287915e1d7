using System.ComponentModel.DataAnnotations;

namespace Latchkey.Features.SecurityEvents;

/// <summary>The security event log. Bound from the <c>SecurityEvents</c> section.</summary>
public sealed class SecurityEventOptions
{
    public const string SectionName = "SecurityEvents";

    /// <summary>Events older than this are removed by the clean-up (<c>Cleanup:IntervalHours</c>, <c>latchkey cleanup</c>).</summary>
    [Range(1, 36_500)]
    public int RetentionDays { get; set; } = 365;
}

using System.Security.Claims;
using Latchkey.Cluster;
using Latchkey.Common;
using Latchkey.Features.ExternalApi;
using Latchkey.Storage;

namespace Latchkey.Features.SecurityEvents;

/// <summary>
/// Records security events off the request path (queued, written in batches by the audit writer),
/// with the source address and user agent of the request that caused them, if any.
/// </summary>
public sealed class SecurityEventLog(IServiceScopeFactory scopes, TimeProvider time, IHttpContextAccessor http) : AuditLog<SecurityEvent>(scopes)
{
    /// <summary>
    /// Queues one event. Pass ids, never secrets. Without <paramref name="clientId"/>, the OAuth
    /// client that authenticated the current request (if any) is named.
    /// </summary>
    public void Record(string accountId, string type, string? subjectId = null, string? clientId = null, string? detail = null) =>
        Record(accountId, type, subjectId, clientId, detail, onceAMinute: false);

    /// <summary>
    /// Queues the event unless the same event (type, subject, caller, address) was queued in the
    /// last minute: for routine events on hot paths (a credential's token handed out thousands of
    /// times a minute), which the per-credential audit keeps in full.
    /// </summary>
    public void RecordOnceAMinute(string accountId, string type, string subjectId) =>
        Record(accountId, type, subjectId, clientId: null, detail: null, onceAMinute: true);

    private readonly UsageStamps _recent = new();

    private void Record(string accountId, string type, string? subjectId, string? clientId, string? detail, bool onceAMinute)
    {
        var context = http.HttpContext;
        var address = ClientAddress.Of(context);
        clientId ??= CallingClient(context?.User);
        var now = time.GetUtcNow();
        if (onceAMinute && !_recent.ShouldRecord($"{type}|{subjectId}|{clientId}|{address}", now, TimeSpan.FromMinutes(1)))
        {
            return;
        }
        Record(new SecurityEvent
        {
            AccountId = accountId,
            OccurredAt = now,
            Type = type,
            SubjectId = Cut(subjectId, SecurityEventLimits.IdMaxLength),
            ClientId = Cut(clientId, SecurityEventLimits.IdMaxLength),
            IpAddress = Cut(address?.ToString(), SecurityEventLimits.IpAddressMaxLength),
            UserAgent = Cut(context?.Request.Headers.UserAgent.ToString(), SecurityEventLimits.UserAgentMaxLength),
            Detail = Cut(detail, SecurityEventLimits.DetailMaxLength),
        });
    }

    private static string? CallingClient(ClaimsPrincipal? user) =>
        user?.Identity?.IsAuthenticated == true ? user.FindFirstValue(ExternalApiClaims.ClientId) : null;

    private static string? Cut(string? value, int maxLength) =>
        string.IsNullOrEmpty(value) ? null : value.Length > maxLength ? value[..maxLength] : value;
}

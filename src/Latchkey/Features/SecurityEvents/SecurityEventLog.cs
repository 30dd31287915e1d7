using System.Security.Claims;
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
    public void Record(string accountId, string type, string? subjectId = null, string? clientId = null, string? detail = null)
    {
        var context = http.HttpContext;
        var address = context?.Connection.RemoteIpAddress;
        if (address is { IsIPv4MappedToIPv6: true })
        {
            address = address.MapToIPv4();
        }
        Record(new SecurityEvent
        {
            AccountId = accountId,
            OccurredAt = time.GetUtcNow(),
            Type = type,
            SubjectId = Cut(subjectId, SecurityEventLimits.IdMaxLength),
            ClientId = Cut(clientId ?? CallingClient(context?.User), SecurityEventLimits.IdMaxLength),
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

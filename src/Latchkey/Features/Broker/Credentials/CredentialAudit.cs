using Latchkey.Features.SecurityEvents;
using Latchkey.Storage;

namespace Latchkey.Features.Broker.Credentials;

/// <summary>
/// Credential events (created, read, refreshed, deleted, ...), written off the request path. Each is
/// also the owner's security event: one call queues both rows, and neither costs the read a write.
/// Successful reads, thousands a minute on a busy credential, reach the security log once a
/// minute per caller; this audit keeps every one.
/// </summary>
public sealed class CredentialAudit(IServiceScopeFactory scopes, TimeProvider time, SecurityEventLog securityEvents) : AuditLog<CredentialAuditEvent>(scopes)
{
    public void Record(string credentialId, string accountId, string action, string outcome = "ok")
    {
        Record(new CredentialAuditEvent { CredentialId = credentialId, AccountId = accountId, Action = action, Outcome = outcome, At = time.GetUtcNow() });
        if (action == "read" && outcome == "ok")
        {
            // Routine reads reach the owner's security log once a minute per caller; refused ones always.
            securityEvents.RecordOnceAMinute(accountId, SecurityEventTypes.CredentialRead, credentialId);
        }
        else if (SecurityEventType(action) is { } type)
        {
            securityEvents.Record(accountId, type, credentialId, detail: outcome == "ok" ? null : outcome);
        }
    }

    private static string? SecurityEventType(string action) => action switch
    {
        "created" => SecurityEventTypes.CredentialCreated,
        "read" => SecurityEventTypes.CredentialRead,
        "refreshed" => SecurityEventTypes.CredentialRefreshed,
        "refresh_failed" => SecurityEventTypes.CredentialRefreshFailed,
        "deleted" => SecurityEventTypes.CredentialDeleted,
        _ => null,
    };
}

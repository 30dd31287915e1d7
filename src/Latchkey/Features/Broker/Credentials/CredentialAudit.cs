using Latchkey.Features.Email;
using Latchkey.Features.SecurityEvents;
using Latchkey.Features.Webhooks;
using Latchkey.Storage;

namespace Latchkey.Features.Broker.Credentials;

/// <summary>
/// Credential events (created, read, refreshed, deleted, ...), written off the request path. Each is
/// also the owner's security event: one call queues both rows, and neither costs the read a write.
/// Successful reads, thousands a minute on a busy credential, reach the security log once a
/// minute per caller; this audit keeps every one.
/// </summary>
public sealed class CredentialAudit(IServiceScopeFactory scopes, TimeProvider time, SecurityEventLog securityEvents, WebhookPublisher webhooks,
    SecurityNotices notices) : AuditLog<CredentialAuditEvent>(scopes)
{
    /// <summary>
    /// Records a change to a credential (created, refreshed, refresh_failed, deleted) and publishes it
    /// to the account's webhooks, with what an app needs to act on it (never a token). A refresh
    /// that ends in needs_reauth is also published as <c>credential.needs_reauth</c>.
    /// </summary>
    public async Task RecordChangeAsync(Credential credential, string action, string outcome = "ok")
    {
        Record(credential.Id, credential.AccountId, action, outcome);
        var data = new
        {
            credential_id = credential.Id,
            provider_id = credential.ProviderInstanceId,
            provider = credential.ProviderKey,
            kind = credential.Kind,
            status = credential.Status,
            end_user_id = credential.EndUserId,
            tags = CredentialTags.Decode(credential.Tags),
            external_account_label = credential.ExternalAccountLabel,
            error = action == "refresh_failed" ? credential.LastError ?? outcome : null,
        };
        await webhooks.PublishAsync(credential.AccountId, $"credential.{action}", data);
        if ((action == "refresh_failed" && credential.Status == CredentialStatus.NeedsReauth) || action == "needs_reauth")
        {
            if (action == "refresh_failed")
            {
                await webhooks.PublishAsync(credential.AccountId, WebhookEvents.CredentialNeedsReauth, data);
            }
            notices.CredentialNeedsReauthorization(credential.AccountId, credential.Id, credential.ProviderKey, credential.ExternalAccountLabel);
        }
    }

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

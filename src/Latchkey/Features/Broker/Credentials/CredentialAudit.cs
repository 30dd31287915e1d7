using Latchkey.Storage;

namespace Latchkey.Features.Broker.Credentials;

/// <summary>Credential events (created, read, refreshed, deleted, ...), written off the request path.</summary>
public sealed class CredentialAudit(IServiceScopeFactory scopes, TimeProvider time) : AuditLog<CredentialAuditEvent>(scopes)
{
    public void Record(string credentialId, string accountId, string action, string outcome = "ok") =>
        Record(new CredentialAuditEvent { CredentialId = credentialId, AccountId = accountId, Action = action, Outcome = outcome, At = time.GetUtcNow() });
}

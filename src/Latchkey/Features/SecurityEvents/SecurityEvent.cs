using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Latchkey.Features.SecurityEvents;

/// <summary>
/// One security-relevant thing that happened to an account: a sign-in, a consent, a token, a key,
/// a credential. It names what was acted on by id only; it never holds a token, secret, code or password.
/// </summary>
public sealed class SecurityEvent
{
    public long Id { get; init; }
    public required string AccountId { get; init; }
    public DateTimeOffset OccurredAt { get; init; }
    /// <summary>One of <see cref="SecurityEventTypes"/>.</summary>
    public required string Type { get; init; }
    /// <summary>The id of what was acted on: token, authorization, API key or credential id.</summary>
    public string? SubjectId { get; init; }
    /// <summary>The OAuth client involved, where there is one.</summary>
    public string? ClientId { get; init; }
    public string? IpAddress { get; init; }
    public string? UserAgent { get; init; }
    /// <summary>Outcome or circumstances in a few words (grant type, failure kind, scopes).</summary>
    public string? Detail { get; init; }
}

/// <summary>The event types, as stored and as the API's <c>type</c> filter names them.</summary>
public static class SecurityEventTypes
{
    public const string SignIn = "sign_in";
    public const string SignInFailed = "sign_in_failed";
    public const string SignInLockedOut = "sign_in_locked_out";
    public const string ConsentGranted = "consent_granted";
    public const string ConsentDenied = "consent_denied";
    public const string TokenIssued = "token_issued";
    public const string TokenRevoked = "token_revoked";
    public const string ApiKeyCreated = "api_key_created";
    public const string ApiKeyRevoked = "api_key_revoked";
    public const string CredentialCreated = "credential_created";
    public const string CredentialRead = "credential_read";
    public const string CredentialRefreshed = "credential_refreshed";
    public const string CredentialRefreshFailed = "credential_refresh_failed";
    public const string CredentialDeleted = "credential_deleted";
    public const string ToolCallApprovalRequested = "tool_approval_requested";
    public const string ToolCallApproved = "tool_call_approved";
    public const string ToolCallDenied = "tool_call_denied";
    public const string AccountDisabled = "account_disabled";
    public const string AccountEnabled = "account_enabled";
    public const string AccountDeleted = "account_deleted";
    public const string SessionsEnded = "sessions_ended";
    public const string PasswordResetByAdmin = "password_reset_by_admin";
    public const string EmailConfirmed = "email_confirmed";
    public const string PasswordChanged = "password_changed";
    public const string PasskeyAdded = "passkey_added";
    public const string PasskeyRemoved = "passkey_removed";
    public const string TwoFactorEnabled = "two_factor_enabled";
    public const string TwoFactorDisabled = "two_factor_disabled";
    public const string RecoveryCodesCreated = "recovery_codes_created";
    public const string RecoveryCodeUsed = "recovery_code_used";
    public const string SessionEnded = "session_ended";
    public const string ExternalLoginAdded = "external_login_added";
    public const string ExternalLoginRemoved = "external_login_removed";
    public const string TwoFactorRequired = "two_factor_required";
    public const string TwoFactorNoLongerRequired = "two_factor_not_required";

    public static readonly IReadOnlyList<string> All =
    [
        SignIn, SignInFailed, SignInLockedOut, ConsentGranted, ConsentDenied, TokenIssued, TokenRevoked,
        ApiKeyCreated, ApiKeyRevoked, CredentialCreated, CredentialRead, CredentialRefreshed, CredentialRefreshFailed, CredentialDeleted,
        ToolCallApprovalRequested, ToolCallApproved, ToolCallDenied, AccountDisabled, AccountEnabled, AccountDeleted, SessionsEnded, PasswordResetByAdmin, EmailConfirmed,
        PasswordChanged, PasskeyAdded, PasskeyRemoved, TwoFactorEnabled, TwoFactorDisabled, RecoveryCodesCreated, RecoveryCodeUsed, SessionEnded,
        TwoFactorRequired, TwoFactorNoLongerRequired, ExternalLoginAdded, ExternalLoginRemoved,
    ];
}

/// <summary>Column limits; values are cut to fit when recorded.</summary>
public static class SecurityEventLimits
{
    public const int TypeMaxLength = 40;
    public const int IdMaxLength = 200;
    public const int IpAddressMaxLength = 64;
    public const int UserAgentMaxLength = 256;
    public const int DetailMaxLength = 300;
}

internal sealed class SecurityEventConfiguration : IEntityTypeConfiguration<SecurityEvent>
{
    public void Configure(EntityTypeBuilder<SecurityEvent> entity)
    {
        entity.ToTable("security_events");
        entity.HasKey(e => e.Id);
        entity.Property(e => e.Type).HasMaxLength(SecurityEventLimits.TypeMaxLength);
        entity.Property(e => e.SubjectId).HasMaxLength(SecurityEventLimits.IdMaxLength);
        entity.Property(e => e.ClientId).HasMaxLength(SecurityEventLimits.IdMaxLength);
        entity.Property(e => e.IpAddress).HasMaxLength(SecurityEventLimits.IpAddressMaxLength);
        entity.Property(e => e.UserAgent).HasMaxLength(SecurityEventLimits.UserAgentMaxLength);
        entity.Property(e => e.Detail).HasMaxLength(SecurityEventLimits.DetailMaxLength);
        // The owner's queries (newest first, paged by occurred-at and id); retention deletes by age alone.
        entity.HasIndex(e => new { e.AccountId, e.OccurredAt, e.Id });
        entity.HasIndex(e => e.OccurredAt);
    }
}

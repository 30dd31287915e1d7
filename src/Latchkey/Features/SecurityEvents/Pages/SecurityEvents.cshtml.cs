using Latchkey.Common;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.SecurityEvents.Pages;

/// <summary>The signed-in user's recent security events, and their whole history as a download.</summary>
[Authorize]
public sealed class SecurityEventsModel(SecurityEventHistory history, TimeProvider time) : PageModel
{
    public const int RecentCount = 50;

    private static readonly SecurityEventFilter Everything = new([], null, null);

    public IReadOnlyList<SecurityEvent> Events { get; private set; } = [];

    public bool HasOlder { get; private set; }

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        var (events, next) = await history.PageAsync(User.UserId(), Everything, RecentCount, null, cancellationToken);
        Events = events;
        HasOlder = next is not null;
        Response.Headers.CacheControl = "no-store";
    }

    /// <summary>The same download as <c>GET /external-api/v1/security-events/export</c>, for the browser session.</summary>
    public async Task<IActionResult> OnGetExportAsync(string? format, [FromServices] IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json)
    {
        if (!SecurityEventExport.TryParseFormat(format, out var exportFormat))
        {
            return BadRequest();
        }
        Response.ContentType = SecurityEventExport.ContentType(exportFormat);
        Response.Headers.ContentDisposition = new System.Net.Mime.ContentDisposition
        {
            FileName = SecurityEventExport.FileName(exportFormat, time.GetUtcNow()),
            DispositionType = "attachment",
        }.ToString();
        Response.Headers.CacheControl = "no-store";
        await SecurityEventExport.WriteAsync(Response.Body, exportFormat, history.AllAsync(User.UserId(), Everything, HttpContext.RequestAborted),
            json.Value.SerializerOptions, HttpContext.RequestAborted);
        return new EmptyResult();
    }

    /// <summary>An event type in words.</summary>
    public static string Describe(string type) => type switch
    {
        SecurityEventTypes.SignIn => "Signed in",
        SecurityEventTypes.SignInFailed => "Sign-in failed",
        SecurityEventTypes.SignInLockedOut => "Account locked",
        SecurityEventTypes.ConsentGranted => "App allowed",
        SecurityEventTypes.ConsentDenied => "App denied",
        SecurityEventTypes.TokenIssued => "Token issued",
        SecurityEventTypes.TokenRevoked => "Token revoked",
        SecurityEventTypes.ApiKeyCreated => "API key created",
        SecurityEventTypes.ApiKeyRevoked => "API key revoked",
        SecurityEventTypes.CredentialCreated => "Connection added",
        SecurityEventTypes.CredentialRead => "Connection used",
        SecurityEventTypes.CredentialRefreshed => "Connection refreshed",
        SecurityEventTypes.CredentialRefreshFailed => "Connection refresh failed",
        SecurityEventTypes.CredentialDeleted => "Connection removed",
        SecurityEventTypes.ToolCallApprovalRequested => "Tool call waiting for approval",
        SecurityEventTypes.ToolCallApproved => "Tool call approved",
        SecurityEventTypes.ToolCallDenied => "Tool call denied",
        SecurityEventTypes.AccountDisabled => "Account disabled by an administrator",
        SecurityEventTypes.AccountEnabled => "Account enabled by an administrator",
        SecurityEventTypes.AccountDeleted => "Account deleted",
        SecurityEventTypes.SessionsEnded => "Other sessions signed out",
        SecurityEventTypes.SessionEnded => "A session signed out",
        SecurityEventTypes.PasswordResetByAdmin => "Password reset by an administrator",
        SecurityEventTypes.EmailConfirmed => "E-mail address confirmed",
        SecurityEventTypes.PasswordChanged => "Password changed",
        SecurityEventTypes.PasskeyAdded => "Passkey added",
        SecurityEventTypes.PasskeyRemoved => "Passkey removed",
        SecurityEventTypes.TwoFactorEnabled => "Two-factor authentication turned on",
        SecurityEventTypes.TwoFactorDisabled => "Two-factor authentication turned off",
        SecurityEventTypes.RecoveryCodesCreated => "New recovery codes",
        SecurityEventTypes.RecoveryCodeUsed => "Recovery code used",
        SecurityEventTypes.TwoFactorRequired => "Two-factor required by an administrator",
        SecurityEventTypes.TwoFactorNoLongerRequired => "Two-factor no longer required",
        SecurityEventTypes.ExternalLoginAdded => "Sign-in with another account linked",
        SecurityEventTypes.ExternalLoginRemoved => "Sign-in with another account unlinked",
        _ => type,
    };

    public static bool IsWarning(string type) =>
        type is SecurityEventTypes.SignInFailed or SecurityEventTypes.SignInLockedOut or SecurityEventTypes.CredentialRefreshFailed
            or SecurityEventTypes.AccountDisabled or SecurityEventTypes.AccountDeleted or SecurityEventTypes.TwoFactorDisabled
            or SecurityEventTypes.RecoveryCodeUsed or SecurityEventTypes.PasswordChanged;
}

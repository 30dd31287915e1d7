using System.ComponentModel.DataAnnotations;

namespace Latchkey.Features.Accounts;

/// <summary>Account rules. Bound from the <c>Accounts</c> section.</summary>
public sealed class AccountOptions
{
    public const string SectionName = "Accounts";

    /// <summary>Whether anyone may create an account at <c>/account/sign-up</c>. The CLI can always create users.</summary>
    public bool AllowSignUp { get; set; } = true;

    /// <summary>
    /// Whether an account must confirm its e-mail address (the link sent at sign-up) before it can
    /// sign in. Needs a way to send e-mail (<c>Email:SmtpHost</c>); accounts made with the CLI count as confirmed.
    /// </summary>
    public bool RequireConfirmedEmail { get; set; }

    /// <summary>
    /// Whether an account with the admin role must use a second factor (an authenticator app): one
    /// without it is sent to set it up before it can do anything else. Administrators can change it on <c>/admin/settings</c>.
    /// </summary>
    public bool RequireTwoFactorForAdmins { get; set; }

    /// <summary>How long "remember this browser" spares a browser the second factor, in days.</summary>
    [Range(1, 90)]
    public int RememberBrowserDays { get; set; } = 30;

    /// <summary>Failed sign-ins in a row before the account is locked.</summary>
    [Range(1, 100)]
    public int MaxFailedSignInAttempts { get; set; } = 5;

    /// <summary>How long a locked account stays locked.</summary>
    [Range(1, 24 * 60)]
    public int LockoutMinutes { get; set; } = 15;

    /// <summary>How long a sign-in lasts without activity (sliding).</summary>
    [Range(5, 60 * 24 * 90)]
    public int SessionMinutes { get; set; } = 60 * 24 * 14;
}

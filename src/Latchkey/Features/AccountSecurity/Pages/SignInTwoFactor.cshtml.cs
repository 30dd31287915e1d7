using Latchkey.Features.Accounts;
using Latchkey.Features.Email;
using Latchkey.Features.SecurityEvents;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.AccountSecurity.Pages;

/// <summary>
/// The second step of a password sign-in when the account uses two-factor authentication: the
/// authenticator app's code (optionally remembering this browser), or one recovery code.
/// </summary>
public sealed partial class SignInTwoFactorModel(SignInManager<LatchkeyUser> signIn, SecurityEventLog securityEvents, SecurityNotices notices,
    IOptions<AccountOptions> options, ILogger<SignInTwoFactorModel> logger) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    /// <summary>Whether the form asks for a recovery code instead of the app's code.</summary>
    [BindProperty(SupportsGet = true)]
    public bool Recovery { get; set; }

    public int RememberDays => options.Value.RememberBrowserDays;

    public async Task<IActionResult> OnGetAsync() =>
        await signIn.GetTwoFactorAuthenticationUserAsync() is null ? StartAgain() : Page();

    public async Task<IActionResult> OnPostAsync(string? code, bool remember)
    {
        var user = await signIn.GetTwoFactorAuthenticationUserAsync();
        if (user is null)
        {
            return StartAgain();
        }
        var digits = TwoFactor.Digits(code ?? "");
        if (digits.Length == 0)
        {
            ModelState.AddModelError("code", "Enter the six-digit code your authenticator app shows.");
            return Page();
        }
        var result = await signIn.TwoFactorAuthenticatorSignInAsync(digits, isPersistent: false, rememberClient: remember);
        return Outcome(result, user, remember ? "password and authenticator app; browser remembered" : "password and authenticator app", "code",
            "That code is not the one your app shows now. Try the newest code.");
    }

    public async Task<IActionResult> OnPostRecoveryAsync(string? recoveryCode)
    {
        Recovery = true;
        var user = await signIn.GetTwoFactorAuthenticationUserAsync();
        if (user is null)
        {
            return StartAgain();
        }
        if (string.IsNullOrWhiteSpace(recoveryCode))
        {
            ModelState.AddModelError("recoveryCode", "Enter one of your recovery codes.");
            return Page();
        }
        var result = await signIn.TwoFactorRecoveryCodeSignInAsync(recoveryCode);
        if (result.Succeeded)
        {
            var left = await signIn.UserManager.CountRecoveryCodesAsync(user);
            securityEvents.Record(user.Id, SecurityEventTypes.RecoveryCodeUsed, detail: $"{left} left");
            if (left <= 3)
            {
                TempData["Notice"] = $"You signed in with a recovery code; {left} are left. Make new ones below.";
                ReturnUrl = AccountSecuritySetup.SecurityPath;
            }
        }
        return Outcome(result, user, "password and recovery code", "recoveryCode", "That is not one of your unused recovery codes.");
    }

    private IActionResult Outcome(Microsoft.AspNetCore.Identity.SignInResult result, LatchkeyUser user, string how, string field, string wrong)
    {
        if (result.Succeeded)
        {
            securityEvents.Record(user.Id, SecurityEventTypes.SignIn, detail: how);
            notices.SignedIn(user.Id);
            return LocalRedirect(ReturnUrls.SafeLocal(Url, ReturnUrl));
        }
        if (result.IsLockedOut)
        {
            securityEvents.Record(user.Id, SecurityEventTypes.SignInLockedOut, detail: "too many wrong second-factor codes");
            LogLockedOut(logger);
            ModelState.AddModelError(field, $"Too many wrong codes: this account is locked for up to {options.Value.LockoutMinutes} minutes.");
            return Page();
        }
        securityEvents.Record(user.Id, SecurityEventTypes.SignInFailed, detail: $"wrong {(field == "code" ? "authenticator" : "recovery")} code");
        ModelState.AddModelError(field, wrong);
        return Page();
    }

    private RedirectResult StartAgain() => Redirect(ReturnUrls.AppendTo(AccountsSetup.SignInPath, ReturnUrl));

    [LoggerMessage(Level = LogLevel.Warning, Message = "Second-factor sign-in refused: account locked out")]
    private static partial void LogLockedOut(ILogger logger);
}

using System.ComponentModel.DataAnnotations;
using Latchkey.Features.AccountSecurity;
using Latchkey.Features.Email;
using Latchkey.Features.SecurityEvents;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Accounts.Pages;

public sealed partial class SignInModel(
    SignInManager<LatchkeyUser> signInManager,
    IOptions<AccountOptions> options,
    SecurityEventLog securityEvents,
    SecurityNotices notices,
    Passkeys passkeys,
    ILogger<SignInModel> logger) : PageModel
{
    [BindProperty]
    public SignInInput Input { get; set; } = new();

    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    /// <summary>Set when the password was right but the address is not confirmed yet.</summary>
    public string? UnconfirmedEmail { get; private set; }

    public string SignUpUrl => ReturnUrls.AppendTo(AccountsSetup.SignUpPath, ReturnUrl);

    public void OnGet()
    {
    }

    /// <summary>Options for <c>navigator.credentials.get</c> (site.js asks for them when "Sign in with a passkey" is pressed).</summary>
    public async Task<IActionResult> OnPostPasskeyOptionsAsync() => Content(await passkeys.RequestOptionsAsync(), "application/json");

    public async Task<IActionResult> OnPostPasskeyAsync(string? credential)
    {
        ModelState.Clear();
        if (string.IsNullOrEmpty(credential))
        {
            ModelState.AddModelError(string.Empty, "The browser gave no passkey. Try again, or sign in with your password.");
            return Page();
        }
        var outcome = await passkeys.SignInAsync(credential);
        if (outcome.User is { } user)
        {
            notices.SignedIn(user.Id);
            return LocalRedirect(ReturnUrls.SafeLocal(Url, ReturnUrl));
        }
        LogFailed(logger);
        ModelState.AddModelError(string.Empty, outcome.Problem!);
        return Page();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        if (!ModelState.IsValid)
        {
            return Page();
        }

        // The user is looked up here (as PasswordSignInAsync would) so that the attempt lands in
        // their security log; an unknown address is recorded nowhere, so no log reveals who has an account.
        var user = await signInManager.UserManager.FindByNameAsync(Input.Email.Trim());
        var result = user is null
            ? Microsoft.AspNetCore.Identity.SignInResult.Failed
            : await signInManager.PasswordSignInAsync(user, Input.Password, isPersistent: false, lockoutOnFailure: true);
        if (result.Succeeded)
        {
            securityEvents.Record(user!.Id, SecurityEventTypes.SignIn, detail: "password");
            notices.SignedIn(user.Id);
            return LocalRedirect(ReturnUrls.SafeLocal(Url, ReturnUrl));
        }
        if (result.RequiresTwoFactor)
        {
            // The password was right; Identity keeps who is signing in in a short-lived cookie until the code comes.
            return LocalRedirect(ReturnUrls.AppendTo(AccountSecuritySetup.TwoFactorSignInPath, ReturnUrl));
        }
        // An administrator's disabling is said only to whoever gives the password; anyone else gets the answer a wrong password gets.
        var disabled = result.IsLockedOut && AccountDisabling.IsDisabled(user!);
        if (disabled && await signInManager.UserManager.CheckPasswordAsync(user!, Input.Password))
        {
            securityEvents.Record(user!.Id, SecurityEventTypes.SignInFailed, detail: "account disabled");
            ModelState.AddModelError(string.Empty, "This account is disabled. Ask the administrator of this Latchkey to enable it.");
            return Page();
        }
        // Likewise an address still to confirm (Accounts:RequireConfirmedEmail), with the way to get the link again.
        if (result.IsNotAllowed && !user!.EmailConfirmed && await signInManager.UserManager.CheckPasswordAsync(user, Input.Password))
        {
            securityEvents.Record(user.Id, SecurityEventTypes.SignInFailed, detail: "e-mail address not confirmed");
            UnconfirmedEmail = user.Email;
            return Page();
        }
        if (result.IsLockedOut && !disabled)
        {
            securityEvents.Record(user!.Id, SecurityEventTypes.SignInLockedOut, detail: "account locked after too many failed attempts");
            LogLockedOut(logger);
            ModelState.AddModelError(string.Empty,
                $"Too many failed attempts: this account is locked for up to {options.Value.LockoutMinutes} minutes. Try again later.");
            return Page();
        }
        // One message for unknown e-mail and wrong password, so the form does not reveal who has an account.
        if (user is not null)
        {
            securityEvents.Record(user.Id, SecurityEventTypes.SignInFailed,
                detail: disabled ? "account disabled" : result.IsNotAllowed ? "sign-in not allowed" : "wrong password");
        }
        LogFailed(logger);
        ModelState.AddModelError(string.Empty, "That e-mail address and password do not match an account.");
        return Page();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Sign-in failed")]
    private static partial void LogFailed(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sign-in refused: account locked out")]
    private static partial void LogLockedOut(ILogger logger);
}

public sealed class SignInInput
{
    [Required(ErrorMessage = "Enter your e-mail address.")]
    [StringLength(AccountLimits.EmailMaxLength)]
    public string Email { get; set; } = "";

    [Required(ErrorMessage = "Enter your password.")]
    [StringLength(AccountLimits.PasswordMaxLength)]
    public string Password { get; set; } = "";
}

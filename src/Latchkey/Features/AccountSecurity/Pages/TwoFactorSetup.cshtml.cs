using Latchkey.Features.Accounts;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Latchkey.Features.AccountSecurity.Pages;

/// <summary>Sets up an authenticator app: scan the QR code (or type the key), prove it with a code, keep the recovery codes.</summary>
[Authorize]
public sealed class TwoFactorSetupModel(UserManager<LatchkeyUser> users, SignInManager<LatchkeyUser> signIn, TwoFactor twoFactor,
    AccountSessions sessions) : PageModel
{
    public AuthenticatorEnrolment? Enrolment { get; private set; }
    public bool Required { get; private set; }
    public bool AlreadyOn { get; private set; }
    public IReadOnlyList<string>? RecoveryCodes { get; private set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        var user = await users.GetUserAsync(User);
        return user is null ? Unauthorized() : await ShowAsync(user, cancellationToken);
    }

    public async Task<IActionResult> OnPostAsync(string? code, CancellationToken cancellationToken)
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Unauthorized();
        }
        if (user.TwoFactorEnabled)
        {
            return RedirectToPage("/AccountSecurity/Pages/Security");
        }
        var codes = string.IsNullOrWhiteSpace(code) ? null : await twoFactor.EnableAsync(user, code);
        if (codes is null)
        {
            ModelState.AddModelError("code", string.IsNullOrWhiteSpace(code)
                ? "Enter the six-digit code your app shows."
                : "That code is not the one your app shows now. Check the time on your phone, then try the newest code.");
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return await ShowAsync(user, cancellationToken);
        }
        // Turning it on changes the security stamp: other browsers are signed out, this one signs in again.
        await sessions.EndOthersAsync(user.Id, HttpContext, cancellationToken);
        await signIn.RefreshSignInAsync(user);
        RecoveryCodes = codes;
        return Page();
    }

    private async Task<IActionResult> ShowAsync(LatchkeyUser user, CancellationToken cancellationToken)
    {
        Required = await twoFactor.IsRequiredAsync(user, cancellationToken);
        if (user.TwoFactorEnabled)
        {
            AlreadyOn = true;
            return Page();
        }
        var enrolment = await twoFactor.EnrolmentAsync(user);
        if (enrolment.Created)
        {
            // A new key changes the security stamp; the browser setting it up keeps its session.
            await signIn.RefreshSignInAsync(user);
        }
        Enrolment = enrolment;
        return Page();
    }
}

using System.ComponentModel.DataAnnotations;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Latchkey.Features.Accounts.Pages;

/// <summary>The page a reset link opens: choose a new password. The link works once and for a limited time.</summary>
public sealed class ResetPasswordModel(UserManager<LatchkeyUser> users) : PageModel
{
    [BindProperty(SupportsGet = true, Name = "user")]
    public string? UserId { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Code { get; set; }

    [BindProperty]
    public ResetPasswordInput Input { get; set; } = new();

    public bool Done { get; private set; }

    public bool LinkBroken => string.IsNullOrEmpty(UserId) || string.IsNullOrEmpty(Code);

    public IActionResult OnGet() => Page();

    public async Task<IActionResult> OnPostAsync()
    {
        if (LinkBroken || !ModelState.IsValid)
        {
            return Page();
        }
        var user = await users.FindByIdAsync(UserId!);
        var token = AccountLinks.TokenOf(Code);
        var result = user is null || token is null
            ? IdentityResult.Failed(new IdentityError { Code = "InvalidToken" })
            : await users.ResetPasswordAsync(user, token, Input.Password);
        if (result.Succeeded)
        {
            // The reset changed the security stamp, which ends the account's other sessions at their
            // next request; it also ends a lock-out, but not an administrator's disabling.
            await AccountDisabling.EndLockOutAfterResetAsync(users, user!);
            Done = true;
            return Page();
        }
        foreach (var error in result.Errors)
        {
            ModelState.AddModelError(error.Code == "InvalidToken" ? string.Empty : "Input.Password",
                error.Code == "InvalidToken"
                    ? "This reset link has expired or was already used. Ask for a new one."
                    : error.Description);
        }
        return Page();
    }
}

public sealed class ResetPasswordInput
{
    [Required(ErrorMessage = "Choose a new password.")]
    [StringLength(AccountLimits.PasswordMaxLength, MinimumLength = AccountLimits.PasswordMinLength, ErrorMessage = "Use {2} to {1} characters.")]
    public string Password { get; set; } = "";

    [Compare(nameof(Password), ErrorMessage = "The two passwords differ.")]
    public string ConfirmPassword { get; set; } = "";
}

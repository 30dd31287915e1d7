using System.ComponentModel.DataAnnotations;
using Latchkey.Common;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Latchkey.Features.Accounts.Pages;

/// <summary>Asks for an e-mail address and sends a reset link if it belongs to an account; the answer is the same either way.</summary>
public sealed class ForgotPasswordModel(UserManager<LatchkeyUser> users, IAccountEmailSender sender) : PageModel
{
    [BindProperty]
    [Required(ErrorMessage = "Enter the e-mail address of your account.")]
    [EmailAddress(ErrorMessage = "Enter an e-mail address such as you@example.com.")]
    [StringLength(AccountLimits.EmailMaxLength)]
    public string Email { get; set; } = "";

    public bool Sent { get; private set; }

    public void OnGet()
    {
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken cancellationToken)
    {
        if (!ModelState.IsValid)
        {
            return Page();
        }
        var user = await users.FindByEmailAsync(Email.Trim());
        if (user is not null)
        {
            var token = await users.GeneratePasswordResetTokenAsync(user);
            var link = AccountLinks.To(ServerAddress.Base(HttpContext), AccountsSetup.ResetPasswordPath, user.Id, token);
            await sender.SendAsync(AccountEmailTemplate.Compose(user.Email!, "Reset your Latchkey password", user.DisplayName,
                [
                    "Someone (hopefully you) asked to reset the password of your Latchkey account. " +
                    $"Open this link within {AccountsSetup.PasswordResetLifetime.TotalMinutes:0} minutes to choose a new one.",
                ],
                new EmailAction("Choose a new password", link),
                ["If it was not you, ignore this e-mail: your password stays as it is."]), cancellationToken);
        }
        // The same answer whether or not the address has an account, so the form reveals nothing.
        Sent = true;
        return Page();
    }
}

using System.ComponentModel.DataAnnotations;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Accounts.Pages;

public sealed partial class SignInModel(
    SignInManager<LatchkeyUser> signInManager,
    IOptions<AccountOptions> options,
    ILogger<SignInModel> logger) : PageModel
{
    [BindProperty]
    public SignInInput Input { get; set; } = new();

    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    public bool SignUpAllowed => options.Value.AllowSignUp;

    public string SignUpUrl => ReturnUrls.AppendTo(AccountsSetup.SignUpPath, ReturnUrl);

    public void OnGet()
    {
    }

    public async Task<IActionResult> OnPostAsync()
    {
        if (!ModelState.IsValid)
        {
            return Page();
        }

        var result = await signInManager.PasswordSignInAsync(Input.Email.Trim(), Input.Password, isPersistent: false, lockoutOnFailure: true);
        if (result.Succeeded)
        {
            return LocalRedirect(ReturnUrls.SafeLocal(Url, ReturnUrl));
        }
        if (result.IsLockedOut)
        {
            LogLockedOut(logger);
            ModelState.AddModelError(string.Empty,
                $"Too many failed attempts: this account is locked for up to {options.Value.LockoutMinutes} minutes. Try again later.");
            return Page();
        }
        // One message for unknown e-mail and wrong password, so the form does not reveal who has an account.
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

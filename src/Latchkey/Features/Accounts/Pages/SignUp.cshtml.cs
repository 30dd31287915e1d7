using System.ComponentModel.DataAnnotations;
using Latchkey.Common;
using Latchkey.Features.SecurityEvents;
using Latchkey.Features.Settings;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Accounts.Pages;

public sealed class SignUpModel(
    AccountRegistration registration,
    SignInManager<LatchkeyUser> signInManager,
    RuntimeSettings settings,
    AccountConfirmation confirmation,
    IOptions<AccountOptions> options,
    SecurityEventLog securityEvents) : PageModel
{
    private static readonly string[] SortedTimeZoneIds =
        TimeZoneInfo.GetSystemTimeZones().Select(z => z.Id).Order(StringComparer.Ordinal).ToArray();

    [BindProperty]
    public SignUpInput Input { get; set; } = new();

    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    public IReadOnlyList<string> TimeZoneIds => SortedTimeZoneIds;

    /// <summary>The address of an account just made that must be confirmed before it signs in.</summary>
    public string? AwaitingConfirmation { get; private set; }

    public string SignInUrl => ReturnUrls.AppendTo(AccountsSetup.SignInPath, ReturnUrl);

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken) =>
        await settings.IsSignUpAllowedAsync(cancellationToken) ? Page() : SignUpClosed();

    public async Task<IActionResult> OnPostAsync(CancellationToken cancellationToken)
    {
        if (!await settings.IsSignUpAllowedAsync(cancellationToken))
        {
            return SignUpClosed();
        }
        if (!ModelState.IsValid)
        {
            return Page();
        }

        var result = await registration.RegisterAsync(Input.Email, Input.DisplayName, Input.TimeZone, Input.Password);
        if (!result.Succeeded)
        {
            foreach (var (field, messages) in result.Errors)
            {
                var key = field switch
                {
                    "display_name" => "Input.DisplayName",
                    "time_zone" => "Input.TimeZone",
                    "password" => "Input.Password",
                    _ => "Input.Email",
                };
                foreach (var message in messages)
                {
                    ModelState.AddModelError(key, message);
                }
            }
            return Page();
        }

        if (confirmation.Delivers || options.Value.RequireConfirmedEmail)
        {
            await confirmation.SendAsync(result.User, ServerAddress.Base(HttpContext), cancellationToken);
        }
        if (options.Value.RequireConfirmedEmail)
        {
            // No session until the address is confirmed: the next step is in the mailbox.
            AwaitingConfirmation = result.User.Email;
            ModelState.Clear();
            return Page();
        }
        await signInManager.SignInAsync(result.User, isPersistent: false);
        securityEvents.Record(result.User.Id, SecurityEventTypes.SignIn, detail: "new account");
        return LocalRedirect(ReturnUrls.SafeLocal(Url, ReturnUrl));
    }

    private static ContentResult SignUpClosed() => new()
    {
        StatusCode = StatusCodes.Status403Forbidden,
        ContentType = "text/plain; charset=utf-8",
        Content = "Sign-up is closed on this server. Ask an administrator to create an account for you.",
    };
}

public sealed class SignUpInput
{
    [Required(ErrorMessage = "Enter your e-mail address.")]
    [EmailAddress(ErrorMessage = "Enter a valid e-mail address, like name@example.com.")]
    [StringLength(AccountLimits.EmailMaxLength)]
    public string Email { get; set; } = "";

    [Required(ErrorMessage = "Enter your name.")]
    [StringLength(AccountLimits.DisplayNameMaxLength)]
    public string DisplayName { get; set; } = "";

    public string? TimeZone { get; set; } = "UTC";

    [Required(ErrorMessage = "Choose a password.")]
    [StringLength(AccountLimits.PasswordMaxLength, MinimumLength = AccountLimits.PasswordMinLength,
        ErrorMessage = "Use at least {2} characters.")]
    public string Password { get; set; } = "";

    [Compare(nameof(Password), ErrorMessage = "The two passwords differ.")]
    public string ConfirmPassword { get; set; } = "";
}

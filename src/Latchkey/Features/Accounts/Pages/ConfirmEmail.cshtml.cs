using System.ComponentModel.DataAnnotations;
using Latchkey.Common;
using Latchkey.Features.SecurityEvents;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Latchkey.Features.Accounts.Pages;

/// <summary>
/// The link from the confirmation e-mail, and a form to have it sent again. Opening the link
/// shows a button; only pressing it confirms, so a mail scanner that fetches links confirms nothing.
/// </summary>
public sealed class ConfirmEmailModel(AccountConfirmation confirmation, UserManager<LatchkeyUser> users, SecurityEventLog securityEvents) : PageModel
{
    public enum Outcome { None, Confirmed, LinkInvalid, Sent }

    [BindProperty(SupportsGet = true, Name = "user")]
    public string? UserId { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Code { get; set; }

    [BindProperty]
    [EmailAddress(ErrorMessage = "Enter an e-mail address such as name@example.com.")]
    public string? Email { get; set; }

    public Outcome Result { get; private set; }

    public bool HasLink => !string.IsNullOrEmpty(UserId) && !string.IsNullOrEmpty(Code);

    public void OnGet()
    {
    }

    public async Task<IActionResult> OnPostConfirmAsync()
    {
        var user = await confirmation.ConfirmAsync(UserId, Code);
        if (user is null)
        {
            Result = Outcome.LinkInvalid;
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }
        securityEvents.Record(user.Id, SecurityEventTypes.EmailConfirmed);
        Result = Outcome.Confirmed;
        return Page();
    }

    public async Task<IActionResult> OnPostResendAsync(CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(Email))
        {
            ModelState.AddModelError(nameof(Email), "Enter the e-mail address of your account.");
        }
        if (!ModelState.IsValid)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }
        if (await users.FindByEmailAsync(Email!.Trim()) is { EmailConfirmed: false } user)
        {
            await confirmation.SendAsync(user, ServerAddress.Base(HttpContext), cancellationToken);
        }
        // The same answer whether or not the address has an account (or is confirmed already).
        Result = Outcome.Sent;
        return Page();
    }
}

using Latchkey.Common;
using Latchkey.Features.Accounts;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Latchkey.Features.AccountData.Pages;

/// <summary>The account's own data: download all of it, or delete the account after seeing what goes and giving the password.</summary>
[Authorize]
public sealed class AccountModel(UserManager<LatchkeyUser> users, SignInManager<LatchkeyUser> signIn, AccountDeletion deletion, AccountExport export,
    TimeProvider time) : PageModel
{
    public AccountDeletionPlan? Plan { get; private set; }

    public string? DeletedEmail { get; private set; }

    /// <summary>False for an account that signs in only with another identity or a passkey: it confirms with its e-mail address instead.</summary>
    public bool HasPassword { get; private set; } = true;

    [BindProperty]
    public string? Password { get; set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        Plan = await deletion.PlanAsync(User.UserId(), cancellationToken);
        HasPassword = await users.FindByIdAsync(User.UserId()) is not { } user || await users.HasPasswordAsync(user);
        return Page();
    }

    public async Task<IActionResult> OnGetExportAsync(CancellationToken cancellationToken)
    {
        var user = await users.FindByIdAsync(User.UserId());
        if (user is null)
        {
            return NotFound();
        }
        Response.ContentType = "application/json; charset=utf-8";
        Response.Headers.ContentDisposition = new System.Net.Mime.ContentDisposition
        {
            FileName = AccountExport.FileName(time.GetUtcNow()),
            DispositionType = "attachment",
        }.ToString();
        Response.Headers.CacheControl = "no-store";
        await export.WriteAsync(user, Response.Body, cancellationToken);
        return new EmptyResult();
    }

    public async Task<IActionResult> OnPostDeleteAsync(CancellationToken cancellationToken)
    {
        var user = await users.FindByIdAsync(User.UserId());
        if (user is null)
        {
            return NotFound();
        }
        HasPassword = await users.HasPasswordAsync(user);
        var confirmed = HasPassword
            ? !string.IsNullOrEmpty(Password) && await users.CheckPasswordAsync(user, Password)
            : string.Equals(Password?.Trim(), user.Email, StringComparison.OrdinalIgnoreCase);
        if (!confirmed)
        {
            ModelState.AddModelError(nameof(Password), HasPassword
                ? "That is not your password; nothing was deleted."
                : "That is not your account's e-mail address; nothing was deleted.");
            Response.StatusCode = StatusCodes.Status400BadRequest;
            Plan = await deletion.PlanAsync(user.Id, cancellationToken);
            return Page();
        }
        await deletion.DeleteAsync(user, "the account's owner", cancellationToken);
        await signIn.SignOutAsync();
        // This answer is already the signed-out world's: the header must not offer the profile pages.
        HttpContext.User = new System.Security.Claims.ClaimsPrincipal(new System.Security.Claims.ClaimsIdentity());
        DeletedEmail = user.Email;
        return Page();
    }
}

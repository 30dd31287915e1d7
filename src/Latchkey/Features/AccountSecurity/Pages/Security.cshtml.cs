using System.ComponentModel.DataAnnotations;
using Latchkey.Common;
using Latchkey.Features.Accounts;
using Latchkey.Features.SecurityEvents;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Latchkey.Features.AccountSecurity.Pages;

/// <summary>How the account signs in: passkeys, the second factor, where it is signed in, the password.</summary>
[Authorize]
public sealed class SecurityModel(
    UserManager<LatchkeyUser> users,
    SignInManager<LatchkeyUser> signIn,
    Passkeys passkeys,
    TwoFactor twoFactor,
    AccountSessions sessions,
    ExternalSignIn.ExternalAccounts external,
    SecurityEventLog securityEvents) : PageModel
{
    public IReadOnlyList<PasskeySummary> PasskeyList { get; private set; } = [];
    public bool TwoFactorEnabled { get; private set; }
    public bool TwoFactorRequired { get; private set; }
    public int RecoveryCodesLeft { get; private set; }
    public bool BrowserRemembered { get; private set; }
    /// <summary>False for an account made through another identity: it may set a password, with no current one to give.</summary>
    public bool HasPassword { get; private set; } = true;
    public IReadOnlyList<SessionSummary> Sessions { get; private set; } = [];
    /// <summary>The configured providers, each with whether it is linked to this account.</summary>
    public IReadOnlyList<(ExternalSignIn.ExternalProvider Provider, bool Linked)> OtherSignIns { get; private set; } = [];
    public IReadOnlyList<string>? NewRecoveryCodes { get; private set; }
    public string? Notice { get; private set; }

    /// <summary>The password form as sent (bound by its own handler only, so other forms are not validated against it).</summary>
    public PasswordChangeInput PasswordChange { get; private set; } = new();

    public Task<IActionResult> OnGetAsync() => ShowAsync();

    /// <summary>Options for <c>navigator.credentials.create</c> (site.js asks for them just before the browser makes the passkey).</summary>
    public async Task<IActionResult> OnPostPasskeyOptionsAsync()
    {
        var user = await users.GetUserAsync(User);
        return user is null ? Unauthorized() : Content(await passkeys.CreationOptionsAsync(user), "application/json");
    }

    public async Task<IActionResult> OnPostAddPasskeyAsync(string? credential, string? name)
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Unauthorized();
        }
        var problem = string.IsNullOrEmpty(credential)
            ? "The browser made no passkey. Use a browser that supports passkeys, with a device or password manager that can keep one."
            : await passkeys.AddAsync(user, credential, name);
        if (problem is not null)
        {
            ModelState.AddModelError("passkey", problem);
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return await ShowAsync();
        }
        return Done("Passkey added. Next time, choose “Sign in with a passkey”.");
    }

    public async Task<IActionResult> OnPostRemovePasskeyAsync(string? id)
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Unauthorized();
        }
        return await passkeys.RemoveAsync(user, id ?? "") ? Done("Passkey removed: it no longer signs you in.") : NotFound();
    }

    public async Task<IActionResult> OnPostUnlinkAsync(string? provider)
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Unauthorized();
        }
        var problem = await external.UnlinkAsync(user, provider ?? "");
        if (problem is not null)
        {
            ModelState.AddModelError("unlink", problem);
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return await ShowAsync();
        }
        return Done($"{external.DisplayNameOf(provider!)} no longer signs you in.");
    }

    public async Task<IActionResult> OnPostEndSessionAsync(string? id, CancellationToken cancellationToken)
    {
        var userId = User.UserId();
        if (string.IsNullOrEmpty(id) || id == AccountSessions.CurrentId(HttpContext) || !await sessions.EndAsync(userId, id, cancellationToken))
        {
            return NotFound();
        }
        securityEvents.Record(userId, SecurityEventTypes.SessionEnded, subjectId: id[..12], detail: "by the account's owner");
        return Done("That browser is signed out.");
    }

    public async Task<IActionResult> OnPostEndOtherSessionsAsync(CancellationToken cancellationToken)
    {
        var userId = User.UserId();
        var ended = await sessions.EndOthersAsync(userId, HttpContext, cancellationToken);
        securityEvents.Record(userId, SecurityEventTypes.SessionsEnded, detail: $"{ended} other session(s), by the account's owner");
        return Done(ended == 1 ? "One other browser is signed out." : $"{ended} other browsers are signed out.");
    }

    public async Task<IActionResult> OnPostRecoveryCodesAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null || !user.TwoFactorEnabled)
        {
            return user is null ? Unauthorized() : BadRequest();
        }
        NewRecoveryCodes = await twoFactor.NewRecoveryCodesAsync(user);
        return await ShowAsync();
    }

    public async Task<IActionResult> OnPostForgetBrowserAsync()
    {
        await signIn.ForgetTwoFactorClientAsync();
        return Done("This browser will ask for a code again at the next sign-in.");
    }

    public async Task<IActionResult> OnPostDisableTwoFactorAsync(string? password, CancellationToken cancellationToken)
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Unauthorized();
        }
        if (await twoFactor.IsRequiredAsync(user, cancellationToken))
        {
            ModelState.AddModelError("two-factor", "Your account must use two-factor authentication; it stays on.");
        }
        else if (string.IsNullOrEmpty(password) || !await users.CheckPasswordAsync(user, password))
        {
            ModelState.AddModelError("two-factor", "That is not your password; two-factor authentication stays on.");
        }
        if (!ModelState.IsValid)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return await ShowAsync();
        }
        await sessions.EndOthersAsync(user.Id, HttpContext, cancellationToken);
        await twoFactor.DisableAsync(user, "by the account's owner");
        // The security stamp changed: this browser signs in again with it (the others are signed out).
        await signIn.RefreshSignInAsync(user);
        return Done("Two-factor authentication is off. Your authenticator app's codes no longer work.");
    }

    public async Task<IActionResult> OnPostChangePasswordAsync([Bind(Prefix = nameof(PasswordChange))] PasswordChangeInput input, CancellationToken cancellationToken)
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Unauthorized();
        }
        PasswordChange = input;
        var hasPassword = await users.HasPasswordAsync(user);
        if (!hasPassword)
        {
            ModelState.Remove($"{nameof(PasswordChange)}.{nameof(PasswordChangeInput.Current)}");
        }
        if (!ModelState.IsValid)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return await ShowAsync();
        }
        var result = hasPassword
            ? await users.ChangePasswordAsync(user, PasswordChange.Current, PasswordChange.New)
            : await users.AddPasswordAsync(user, PasswordChange.New);
        if (!result.Succeeded)
        {
            foreach (var error in result.Errors)
            {
                var field = error.Code == "PasswordMismatch" ? $"{nameof(PasswordChange)}.{nameof(PasswordChangeInput.Current)}" : $"{nameof(PasswordChange)}.{nameof(PasswordChangeInput.New)}";
                ModelState.AddModelError(field, error.Code == "PasswordMismatch" ? "That is not your current password." : error.Description);
            }
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return await ShowAsync();
        }
        var ended = await sessions.EndOthersAsync(user.Id, HttpContext, cancellationToken);
        await signIn.RefreshSignInAsync(user);
        securityEvents.Record(user.Id, SecurityEventTypes.PasswordChanged, detail: $"by the account's owner; {ended} other session(s) ended");
        return Done(hasPassword
            ? "Password changed. Every other browser signed in to your account is signed out."
            : "Password set: you can also sign in with your e-mail address and this password. Every other browser is signed out.");
    }

    private async Task<IActionResult> ShowAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Unauthorized();
        }
        Notice ??= TempData["Notice"] as string;
        PasskeyList = await passkeys.ListAsync(user);
        TwoFactorEnabled = user.TwoFactorEnabled;
        HasPassword = await users.HasPasswordAsync(user);
        TwoFactorRequired = await twoFactor.IsRequiredAsync(user, HttpContext.RequestAborted);
        RecoveryCodesLeft = TwoFactorEnabled ? await twoFactor.RecoveryCodesLeftAsync(user) : 0;
        BrowserRemembered = TwoFactorEnabled && await signIn.IsTwoFactorClientRememberedAsync(user);
        Sessions = await sessions.ListAsync(user.Id, HttpContext, HttpContext.RequestAborted);
        var linked = (await users.GetLoginsAsync(user)).Select(l => l.LoginProvider).ToHashSet(StringComparer.Ordinal);
        OtherSignIns = [.. external.Providers.Select(p => (p, linked.Contains(p.Name)))];
        return Page();
    }

    /// <summary>After a change: back to the page (a reload does not repeat it), with what happened.</summary>
    private RedirectToPageResult Done(string notice)
    {
        TempData["Notice"] = notice;
        return RedirectToPage();
    }
}

public sealed class PasswordChangeInput
{
    [Required(ErrorMessage = "Enter your current password.")]
    [StringLength(AccountLimits.PasswordMaxLength)]
    public string Current { get; set; } = "";

    [Required(ErrorMessage = "Enter a new password.")]
    [StringLength(AccountLimits.PasswordMaxLength, MinimumLength = AccountLimits.PasswordMinLength,
        ErrorMessage = "Use at least {2} characters.")]
    public string New { get; set; } = "";

    [Compare(nameof(New), ErrorMessage = "The two new passwords differ.")]
    public string Repeat { get; set; } = "";
}

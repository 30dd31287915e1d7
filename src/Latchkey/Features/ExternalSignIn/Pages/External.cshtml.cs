using Latchkey.Common;
using Latchkey.Features.Accounts;
using Latchkey.Features.AccountSecurity;
using Latchkey.Features.Email;
using Latchkey.Features.SecurityEvents;
using Latchkey.Features.Settings;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Latchkey.Features.ExternalSignIn.Pages;

/// <summary>What happens when a provider vouched for someone: sign in, or link, or create an account, each only when it is safe and the person confirms.</summary>
public enum ExternalStep
{
    /// <summary>Nothing to go on (the provider refused, or the step expired): start again.</summary>
    Failed,
    /// <summary>A signed-in person links this identity to their own account (a button).</summary>
    LinkToSignedIn,
    /// <summary>An account has the address the provider verified: its password confirms the link.</summary>
    LinkExisting,
    /// <summary>An account has the address, but the provider did not verify it: no link.</summary>
    Unverified,
    /// <summary>No account has the address: create one that signs in with this identity (a button).</summary>
    Create,
    /// <summary>No account, and none can be made (sign-up closed, no address given).</summary>
    CannotCreate,
}

public sealed partial class ExternalModel(
    ExternalAccounts external,
    SignInManager<LatchkeyUser> signIn,
    AccountRegistration registration,
    RuntimeSettings settings,
    SecurityEventLog securityEvents,
    SecurityNotices notices,
    ILogger<ExternalModel> logger) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    public ExternalStep Step { get; private set; }

    public ExternalIdentity? Identity { get; private set; }

    public string? Problem { get; private set; }

    /// <summary>
    /// Starts a sign-in (or, signed in, a link) with a configured provider. A link, not a form: the
    /// pages' Content-Security-Policy (<c>form-action 'self'</c>) would stop a form's redirect to
    /// the provider. Starting changes nothing here; whatever comes back still needs a confirmation.
    /// </summary>
    public async Task<IActionResult> OnGetStartAsync(string? provider)
    {
        if (!external.IsConfigured(provider))
        {
            return NotFound();
        }
        var then = ReturnUrls.AppendTo(ExternalSignInSetup.ExternalPath, ReturnUrls.SafeLocal(Url, ReturnUrl));
        // The provider's configuration (its discovery document, read once and cached) is needed to
        // send the person there: one that cannot be read gets a page that says so, not OpenIddict's bare 400.
        if (!await external.IsReachableAsync(provider!, HttpContext.RequestAborted))
        {
            return Unreachable(provider!);
        }
        return external.Challenge(provider!, then);
    }

    private PageResult Unreachable(string provider)
    {
        LogUnreachable(logger, provider);
        Response.StatusCode = StatusCodes.Status502BadGateway;
        Step = ExternalStep.Failed;
        Problem = $"{external.DisplayNameOf(provider)} cannot be reached right now, so signing in with it cannot start. Try again later, or use your password.";
        return Page();
    }

    public async Task<IActionResult> OnGetAsync(bool failed = false)
    {
        Identity = failed ? null : await external.CurrentAsync();
        if (Identity is null)
        {
            Step = ExternalStep.Failed;
            return Page();
        }
        if (signIn.IsSignedIn(User))
        {
            Step = ExternalStep.LinkToSignedIn;
            return Page();
        }
        var result = await signIn.ExternalLoginSignInAsync(Identity.Provider, Identity.Subject, isPersistent: false, bypassTwoFactor: false);
        if (result.Succeeded || result.RequiresTwoFactor || result.IsLockedOut || result.IsNotAllowed)
        {
            return await FinishAsync(result, await signIn.UserManager.FindByLoginAsync(Identity.Provider, Identity.Subject));
        }
        // Not linked to any account yet.
        var existing = Identity.Email is null ? null : await signIn.UserManager.FindByEmailAsync(Identity.Email);
        Step = existing is not null
            ? Identity.EmailVerified ? ExternalStep.LinkExisting : ExternalStep.Unverified
            : Identity.Email is not null && await settings.IsSignUpAllowedAsync(HttpContext.RequestAborted) ? ExternalStep.Create : ExternalStep.CannotCreate;
        return Page();
    }

    /// <summary>Signed in already: links the identity to this account.</summary>
    public async Task<IActionResult> OnPostLinkAsync()
    {
        Identity = await external.CurrentAsync();
        var user = await signIn.UserManager.GetUserAsync(User);
        if (Identity is null || user is null)
        {
            Step = ExternalStep.Failed;
            return Page();
        }
        var linked = await external.LinkAsync(user, Identity, "by the signed-in account");
        await HttpContext.SignOutAsync(Microsoft.AspNetCore.Identity.IdentityConstants.ExternalScheme);
        TempData["Notice"] = linked.Succeeded
            ? $"{Identity.ProviderDisplayName} is linked: you can sign in with it."
            : $"{Identity.ProviderDisplayName} was not linked: that identity already signs in to another account.";
        return LocalRedirect(AccountSecuritySetup.SecurityPath);
    }

    /// <summary>An account has the verified address: its password confirms that its owner wants the link.</summary>
    public async Task<IActionResult> OnPostLinkExistingAsync(string? password)
    {
        Identity = await external.CurrentAsync();
        var user = Identity is { Email: not null, EmailVerified: true } ? await signIn.UserManager.FindByEmailAsync(Identity.Email) : null;
        if (Identity is null || user is null)
        {
            Step = ExternalStep.Failed;
            return Page();
        }
        Step = ExternalStep.LinkExisting;
        var check = string.IsNullOrEmpty(password)
            ? Microsoft.AspNetCore.Identity.SignInResult.Failed
            : await signIn.CheckPasswordSignInAsync(user, password, lockoutOnFailure: true);
        if (!check.Succeeded)
        {
            securityEvents.Record(user.Id, SecurityEventTypes.SignInFailed, detail: $"wrong password linking {Identity.ProviderDisplayName}");
            ModelState.AddModelError("password", check.IsLockedOut
                ? "This account is locked or disabled; nothing was linked."
                : "That is not this account's password; nothing was linked.");
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }
        var linked = await external.LinkAsync(user, Identity, "confirmed with the account's password");
        if (!linked.Succeeded)
        {
            Problem = "That identity already signs in to another account; nothing was linked.";
            Step = ExternalStep.Failed;
            return Page();
        }
        // Signs in as a linked identity does: a second factor, if the account has one, still comes next.
        var result = await signIn.ExternalLoginSignInAsync(Identity.Provider, Identity.Subject, isPersistent: false, bypassTwoFactor: false);
        return await FinishAsync(result, user);
    }

    /// <summary>No account has the address: makes one that signs in with this identity (no password).</summary>
    public async Task<IActionResult> OnPostCreateAsync()
    {
        Identity = await external.CurrentAsync();
        if (Identity?.Email is null || !await settings.IsSignUpAllowedAsync(HttpContext.RequestAborted)
            || await signIn.UserManager.FindByEmailAsync(Identity.Email) is not null)
        {
            Step = ExternalStep.Failed;
            return Page();
        }
        var created = await registration.RegisterAsync(Identity.Email, string.IsNullOrWhiteSpace(Identity.Name) ? Identity.Email : Identity.Name,
            "UTC", password: null, emailConfirmed: Identity.EmailVerified);
        if (!created.Succeeded)
        {
            Problem = "The account was not created: " + string.Join(" ", created.Errors.Values.SelectMany(v => v));
            Step = ExternalStep.Failed;
            return Page();
        }
        await external.LinkAsync(created.User, Identity, "new account");
        var result = await signIn.ExternalLoginSignInAsync(Identity.Provider, Identity.Subject, isPersistent: false, bypassTwoFactor: false);
        return await FinishAsync(result, created.User, newAccount: true);
    }

    private async Task<IActionResult> FinishAsync(Microsoft.AspNetCore.Identity.SignInResult result, LatchkeyUser? user, bool newAccount = false)
    {
        var how = newAccount ? $"new account, {Identity!.ProviderDisplayName}" : Identity!.ProviderDisplayName;
        if (result.Succeeded && user is not null)
        {
            await HttpContext.SignOutAsync(Microsoft.AspNetCore.Identity.IdentityConstants.ExternalScheme);
            securityEvents.Record(user.Id, SecurityEventTypes.SignIn, subjectId: Identity.Provider, detail: how);
            notices.SignedIn(user.Id);
            return LocalRedirect(ReturnUrls.SafeLocal(Url, ReturnUrl));
        }
        if (result.RequiresTwoFactor)
        {
            await HttpContext.SignOutAsync(Microsoft.AspNetCore.Identity.IdentityConstants.ExternalScheme);
            return LocalRedirect(ReturnUrls.AppendTo(AccountSecuritySetup.TwoFactorSignInPath, ReturnUrl));
        }
        if (user is not null)
        {
            securityEvents.Record(user.Id, SecurityEventTypes.SignInFailed, detail: $"{how}; {(result.IsLockedOut ? "account locked or disabled" : "sign-in not allowed")}");
        }
        LogRefused(logger);
        Problem = result.IsLockedOut
            ? "This account is locked or disabled."
            : "This account cannot sign in yet: confirm its e-mail address first (the link sent when it was made).";
        Step = ExternalStep.Failed;
        return Page();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sign-in with {Provider} cannot start: its configuration cannot be read (is it reachable?)")]
    private static partial void LogUnreachable(ILogger logger, string provider);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sign-in with another identity refused")]
    private static partial void LogRefused(ILogger logger);
}

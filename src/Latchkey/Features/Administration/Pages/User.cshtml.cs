using Latchkey.Common;
using Latchkey.Features.Accounts;
using Latchkey.Features.SecurityEvents;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Latchkey.Features.Administration.Pages;

/// <summary>One account: what it is and owns, its latest security events, and what an administrator can do to it.</summary>
public sealed class AdminUserModel(AccountAdministration administration, SecurityEventHistory history, AccountSecurity.TwoFactor twoFactor) : PageModel
{
    public const int RecentEvents = 10;

    private static readonly SecurityEventFilter Everything = new([], null, null);

    public UserDetails Details { get; private set; } = null!;

    public IReadOnlyList<SecurityEvent> Events { get; private set; } = [];

    /// <summary>A password just set: the only time it is on a page.</summary>
    public string? NewPassword { get; private set; }

    public bool IsSelf { get; private set; }

    public async Task<IActionResult> OnGetAsync(string id, CancellationToken cancellationToken) =>
        await LoadAsync(id, cancellationToken) is { } user ? Page() : NotFound();

    public Task<IActionResult> OnPostDisableAsync(string id, CancellationToken cancellationToken) =>
        ActAsync(id, refuseSelf: "You cannot disable your own account here; another administrator or the CLI can.", async user =>
        {
            var revoked = await administration.DisableAsync(user, AdminActor.Of(User), cancellationToken);
            return $"{user.Email} is disabled: it cannot sign in, its API keys are refused and its sessions have ended; " +
                   $"{revoked.Authorizations} app sign-in(s) and {revoked.Tokens} token(s) revoked.";
        }, cancellationToken);

    public Task<IActionResult> OnPostEnableAsync(string id, CancellationToken cancellationToken) =>
        ActAsync(id, refuseSelf: null, async user =>
        {
            if (!AccountDisabling.IsDisabled(user))
            {
                return $"{user.Email} is not disabled; nothing changed.";
            }
            await administration.EnableAsync(user, AdminActor.Of(User));
            return $"{user.Email} is enabled: it can sign in and its API keys work again. Apps it used must be authorized again.";
        }, cancellationToken);

    public Task<IActionResult> OnPostSignOutAsync(string id, CancellationToken cancellationToken) =>
        ActAsync(id, refuseSelf: "To end your own sessions, sign out.", async user =>
        {
            await administration.EndSessionsAsync(user, AdminActor.Of(User));
            return $"Every browser session of {user.Email} has ended. Its apps' tokens and API keys still work (disable the account to stop them).";
        }, cancellationToken);

    public Task<IActionResult> OnPostRequireTwoFactorAsync(string id, bool required, CancellationToken cancellationToken) =>
        ActAsync(id, refuseSelf: null, async user =>
            !await administration.SetTwoFactorRequiredAsync(user, required, AdminActor.Of(User))
                ? $"Nothing changed: {user.Email} already was as asked."
                : required
                    ? $"{user.Email} must use two-factor authentication{(user.TwoFactorEnabled ? " (it already does)." : ": it is sent to set it up at its next request.")}"
                    : $"{user.Email} no longer has to use two-factor authentication (it may keep it on).", cancellationToken);

    public Task<IActionResult> OnPostResetTwoFactorAsync(string id, CancellationToken cancellationToken) =>
        ActAsync(id, refuseSelf: "To turn off your own two-factor authentication, use Sign-in and security.", async user =>
        {
            await administration.ResetTwoFactorAsync(user, twoFactor, AdminActor.Of(User));
            return $"Two-factor authentication of {user.Email} is off, its key and recovery codes are gone and its sessions have ended." +
                   (user.TwoFactorRequired ? " It must set it up again at its next sign-in." : "");
        }, cancellationToken);

    public async Task<IActionResult> OnPostResetPasswordAsync(string id, CancellationToken cancellationToken)
    {
        var user = await administration.FindByIdAsync(id);
        if (user is null)
        {
            return NotFound();
        }
        var password = AccountPasswords.Generate();
        var result = await administration.ResetPasswordAsync(user, password, AdminActor.Of(User));
        if (!result.Succeeded)
        {
            ModelState.AddModelError("", "The password was not changed: " + string.Join(" ", result.Errors.Select(e => e.Description)));
        }
        else
        {
            NewPassword = password;
        }
        // The password is on this response only (antiforgery marks it no-store): not stored, not carried over a redirect.
        await LoadAsync(id, cancellationToken);
        return Page();
    }

    private async Task<IActionResult> ActAsync(string id, string? refuseSelf, Func<LatchkeyUser, Task<string>> act, CancellationToken cancellationToken)
    {
        var user = await administration.FindByIdAsync(id);
        if (user is null)
        {
            return NotFound();
        }
        TempData[AdminPaths.NoticeKey] = refuseSelf is not null && user.Id == User.UserId() ? refuseSelf : await act(user);
        return Redirect(AdminPaths.User(id));
    }

    private async Task<LatchkeyUser?> LoadAsync(string id, CancellationToken cancellationToken)
    {
        var user = await administration.FindByIdAsync(id);
        if (user is null)
        {
            return null;
        }
        Details = await administration.DetailsAsync(user, cancellationToken);
        (Events, _) = await history.PageAsync(user.Id, Everything, RecentEvents, null, cancellationToken);
        IsSelf = user.Id == User.UserId();
        return user;
    }
}

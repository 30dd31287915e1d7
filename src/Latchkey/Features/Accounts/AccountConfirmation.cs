using Microsoft.AspNetCore.Identity;

namespace Latchkey.Features.Accounts;

/// <summary>
/// E-mail address confirmation: a link with ASP.NET Core Identity's confirmation token, sent at
/// sign-up and again on request (<c>/account/confirm-email</c>). With
/// <c>Accounts:RequireConfirmedEmail</c> an account cannot sign in until its address is confirmed.
/// </summary>
public sealed class AccountConfirmation(UserManager<LatchkeyUser> users, IAccountEmailSender sender, IHostEnvironment environment)
{
    /// <summary>
    /// Whether a link sent now reaches anyone: a real sender, or Development's log. Sign-up sends
    /// one only then, so a server without e-mail does not log "not sent" for every new account.
    /// </summary>
    public bool Delivers => CanDeliver(sender, environment);

    /// <summary>The rule of <see cref="Delivers"/>, for the start-up check of <c>Accounts:RequireConfirmedEmail</c> too.</summary>
    internal static bool CanDeliver(IAccountEmailSender sender, IHostEnvironment environment) =>
        sender is not LogAccountEmailSender || environment.IsDevelopment();

    /// <summary>Sends the link; <paramref name="site"/> is the server's address the link starts with.</summary>
    public async Task SendAsync(LatchkeyUser user, string site, CancellationToken cancellationToken)
    {
        var link = AccountLinks.To(site, AccountsSetup.ConfirmEmailPath, user.Id, await users.GenerateEmailConfirmationTokenAsync(user));
        await sender.SendAsync(AccountEmailTemplate.Compose(user.Email!, "Confirm your e-mail address for Latchkey", user.DisplayName,
            [
                $"Please confirm that {user.Email} is your address: security notices and password reset links are sent here. " +
                $"The link works for {AccountsSetup.PasswordResetLifetime.TotalMinutes:0} minutes.",
            ],
            new EmailAction("Confirm my address", link),
            ["If you did not create a Latchkey account, ignore this e-mail."]), cancellationToken);
    }

    /// <summary>Confirms the address of <paramref name="userId"/> with the link's code; false when the link is wrong, used or too old.</summary>
    public async Task<LatchkeyUser?> ConfirmAsync(string? userId, string? code)
    {
        if (string.IsNullOrEmpty(userId) || AccountLinks.TokenOf(code) is not { } token || await users.FindByIdAsync(userId) is not { } user)
        {
            return null;
        }
        return user.EmailConfirmed || (await users.ConfirmEmailAsync(user, token)).Succeeded ? user : null;
    }
}

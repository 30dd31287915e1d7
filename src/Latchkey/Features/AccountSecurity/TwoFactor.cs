using System.Security.Claims;
using Latchkey.Features.Accounts;
using Latchkey.Features.SecurityEvents;
using Latchkey.Features.Settings;
using Microsoft.AspNetCore.Identity;
using QRCoder;

namespace Latchkey.Features.AccountSecurity;

/// <summary>What an authenticator app needs to enrol: the key as text and as a QR code of its <c>otpauth://</c> URI.
/// <see cref="Created"/>: the key is new (a new key changes the security stamp, so the session must be refreshed).</summary>
public sealed record AuthenticatorEnrolment(string Key, string FormattedKey, string Uri, string QrCodeSvg, bool Created);

/// <summary>
/// The second factor: an authenticator app (TOTP, RFC 6238, through Identity's authenticator token
/// provider), recovery codes for a lost phone, and whether an account must have it.
/// </summary>
public sealed class TwoFactor(UserManager<LatchkeyUser> users, UserProfiles profiles, RuntimeSettings settings, SecurityEventLog securityEvents)
{
    /// <summary>The name authenticator apps show next to the account.</summary>
    public const string IssuerName = "Latchkey";

    // The login provider name under which Identity's user store keeps its own tokens.
    private const string IdentityStoreProvider = "[AspNetUserStore]";

    /// <summary>An account that must have a second factor (required for it, or an admin while the setting says so) and has none yet.</summary>
    public async ValueTask<bool> MustEnrolAsync(ClaimsPrincipal principal, CancellationToken cancellationToken)
    {
        var userId = principal.FindFirstValue(ClaimTypes.NameIdentifier);
        if (userId is null || await profiles.FindAsync(userId, cancellationToken) is not { TwoFactorEnabled: false } profile)
        {
            return false;
        }
        return await IsRequiredAsync(profile.TwoFactorRequired, principal.IsInRole(AccountRoles.Admin), cancellationToken);
    }

    /// <summary>Whether the account may not turn its second factor off.</summary>
    public async ValueTask<bool> IsRequiredAsync(LatchkeyUser user, CancellationToken cancellationToken) =>
        await IsRequiredAsync(user.TwoFactorRequired, await users.IsInRoleAsync(user, AccountRoles.Admin), cancellationToken);

    private async ValueTask<bool> IsRequiredAsync(bool requiredForAccount, bool admin, CancellationToken cancellationToken) =>
        requiredForAccount || (admin && await settings.IsTwoFactorRequiredForAdminsAsync(cancellationToken));

    /// <summary>The key to enrol with: the one being set up, or a new one. An enabled second factor keeps its key (this is not shown then).</summary>
    public async Task<AuthenticatorEnrolment> EnrolmentAsync(LatchkeyUser user)
    {
        var key = await users.GetAuthenticatorKeyAsync(user);
        var created = string.IsNullOrEmpty(key);
        if (created)
        {
            await users.ResetAuthenticatorKeyAsync(user);
            key = (await users.GetAuthenticatorKeyAsync(user))!;
        }
        var label = Uri.EscapeDataString($"{IssuerName}:{user.Email}");
        var uri = $"otpauth://totp/{label}?secret={key}&issuer={Uri.EscapeDataString(IssuerName)}&digits=6&period=30";
        using var data = QRCodeGenerator.GenerateQrCode(uri, QRCodeGenerator.ECCLevel.M);
        var svg = new SvgQRCode(data).GetGraphic(new System.Drawing.Size(220, 220), "#000000", "#ffffff", drawQuietZones: true,
            sizingMode: SvgQRCode.SizingMode.ViewBoxAttribute);
        return new AuthenticatorEnrolment(key!, Format(key!), uri, svg, created);
    }

    /// <summary>Turns the second factor on when <paramref name="code"/> is what the app shows; returns the first recovery codes, or null for a wrong code.</summary>
    public async Task<IReadOnlyList<string>?> EnableAsync(LatchkeyUser user, string code)
    {
        if (!await users.VerifyTwoFactorTokenAsync(user, users.Options.Tokens.AuthenticatorTokenProvider, Digits(code)))
        {
            return null;
        }
        await users.SetTwoFactorEnabledAsync(user, true);
        securityEvents.Record(user.Id, SecurityEventTypes.TwoFactorEnabled, detail: "authenticator app");
        return await NewRecoveryCodesAsync(user);
    }

    /// <summary>Turns it off and forgets the key, so that the app's codes stop working too.</summary>
    public async Task DisableAsync(LatchkeyUser user, string by)
    {
        await users.SetTwoFactorEnabledAsync(user, false);
        // Identity's store keeps the key and the recovery codes as tokens of its own provider; a new set-up makes a new key.
        await users.RemoveAuthenticationTokenAsync(user, IdentityStoreProvider, "AuthenticatorKey");
        await users.RemoveAuthenticationTokenAsync(user, IdentityStoreProvider, "RecoveryCodes");
        securityEvents.Record(user.Id, SecurityEventTypes.TwoFactorDisabled, detail: by);
    }

    /// <summary>A new set of recovery codes, shown once; the old ones stop working.</summary>
    public async Task<IReadOnlyList<string>> NewRecoveryCodesAsync(LatchkeyUser user)
    {
        var codes = (await users.GenerateNewTwoFactorRecoveryCodesAsync(user, AccountSecuritySetup.RecoveryCodeCount))?.ToList() ?? [];
        securityEvents.Record(user.Id, SecurityEventTypes.RecoveryCodesCreated, detail: $"{codes.Count} codes");
        return codes;
    }

    public Task<int> RecoveryCodesLeftAsync(LatchkeyUser user) => users.CountRecoveryCodesAsync(user);

    /// <summary>Authenticator apps show "123 456"; people type it so.</summary>
    public static string Digits(string code) => new([.. code.Where(char.IsAsciiDigit)]);

    /// <summary>The key in groups of four, easier to type into an app by hand.</summary>
    private static string Format(string key) =>
        string.Join(' ', key.ToLowerInvariant().Chunk(4).Select(chunk => new string(chunk)));
}


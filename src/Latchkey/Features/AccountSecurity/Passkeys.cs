using System.Buffers.Text;
using Latchkey.Features.Accounts;
using Latchkey.Features.SecurityEvents;
using Microsoft.AspNetCore.Identity;

namespace Latchkey.Features.AccountSecurity;

/// <summary>One of an account's passkeys, as the profile lists it.</summary>
public sealed record PasskeySummary(string Id, string Name, DateTimeOffset CreatedAt, bool BackedUp);

/// <summary>The outcome of a passkey sign-in: the account signed in, or why not (in words for the page).</summary>
public sealed record PasskeySignInOutcome(LatchkeyUser? User, string? Problem);

/// <summary>
/// Passkeys (WebAuthn) through ASP.NET Core Identity: the browser's <c>navigator.credentials</c>
/// calls get their options here, and their answers are checked here (Identity keeps the challenge
/// in a short-lived encrypted cookie between the two requests).
/// </summary>
public sealed class Passkeys(SignInManager<LatchkeyUser> signIn, SecurityEventLog securityEvents)
{
    public const int NameMaxLength = 60;

    /// <summary>How many passkeys one account may have: enough for every device, few enough to list.</summary>
    public const int MaxPerAccount = 20;

    private UserManager<LatchkeyUser> Users => signIn.UserManager;

    public Task<string> CreationOptionsAsync(LatchkeyUser user) =>
        signIn.MakePasskeyCreationOptionsAsync(new PasskeyUserEntity
        {
            Id = user.Id,
            Name = user.Email ?? user.Id,
            DisplayName = string.IsNullOrWhiteSpace(user.DisplayName) ? user.Email ?? user.Id : user.DisplayName,
        });

    /// <summary>Registers the passkey the browser just created; the problem in words when it is refused.</summary>
    public async Task<string?> AddAsync(LatchkeyUser user, string credentialJson, string? name)
    {
        if ((await Users.GetPasskeysAsync(user)).Count >= MaxPerAccount)
        {
            return $"An account can have at most {MaxPerAccount} passkeys: remove one first.";
        }
        var attestation = await signIn.PerformPasskeyAttestationAsync(credentialJson);
        if (!attestation.Succeeded)
        {
            return $"The passkey was not added: {attestation.Failure.Message}";
        }
        if (attestation.UserEntity.Id != user.Id)
        {
            return "The passkey was made for another account; nothing was added.";
        }
        var passkey = attestation.Passkey;
        passkey.Name = CleanName(name);
        var result = await Users.AddOrUpdatePasskeyAsync(user, passkey);
        if (!result.Succeeded)
        {
            return string.Join(" ", result.Errors.Select(e => e.Description));
        }
        securityEvents.Record(user.Id, SecurityEventTypes.PasskeyAdded, subjectId: IdOf(passkey.CredentialId), detail: passkey.Name);
        return null;
    }

    public async Task<IReadOnlyList<PasskeySummary>> ListAsync(LatchkeyUser user) =>
        [.. (await Users.GetPasskeysAsync(user))
            .OrderBy(p => p.CreatedAt)
            .Select(p => new PasskeySummary(IdOf(p.CredentialId), p.Name ?? "Passkey", p.CreatedAt, p.IsBackedUp))];

    public async Task<bool> RemoveAsync(LatchkeyUser user, string id)
    {
        byte[] credentialId;
        try
        {
            credentialId = Base64Url.DecodeFromChars(id);
        }
        catch (FormatException)
        {
            return false;
        }
        var passkey = await Users.GetPasskeyAsync(user, credentialId);
        if (passkey is null || !(await Users.RemovePasskeyAsync(user, credentialId)).Succeeded)
        {
            return false;
        }
        securityEvents.Record(user.Id, SecurityEventTypes.PasskeyRemoved, subjectId: id, detail: passkey.Name);
        return true;
    }

    /// <summary>Options for <c>navigator.credentials.get</c>: any passkey of this site (the browser offers the person theirs).</summary>
    public Task<string> RequestOptionsAsync() => signIn.MakePasskeyRequestOptionsAsync(user: null);

    /// <summary>
    /// Checks the browser's answer and signs the account in. A passkey is itself two factors (the
    /// device, and its PIN or biometric, required by <c>userVerification</c>), so no second step follows.
    /// </summary>
    public async Task<PasskeySignInOutcome> SignInAsync(string credentialJson)
    {
        var assertion = await signIn.PerformPasskeyAssertionAsync(credentialJson);
        if (!assertion.Succeeded)
        {
            return new(null, "That passkey did not sign you in. Try again, or use your password.");
        }
        var user = assertion.User;
        if (await Users.IsLockedOutAsync(user))
        {
            securityEvents.Record(user.Id, SecurityEventTypes.SignInFailed, detail: AccountDisabling.IsDisabled(user) ? "passkey; account disabled" : "passkey; account locked");
            return new(null, AccountDisabling.IsDisabled(user)
                ? "This account is disabled. Ask the administrator of this Latchkey to enable it."
                : "This account is locked after too many failed attempts. Try again later.");
        }
        if (!await signIn.CanSignInAsync(user))
        {
            securityEvents.Record(user.Id, SecurityEventTypes.SignInFailed, detail: "passkey; e-mail address not confirmed");
            return new(null, "Confirm your e-mail address first: open the link we sent when you signed up.");
        }
        // The sign count and flags the authenticator reported are kept for the next check.
        await Users.AddOrUpdatePasskeyAsync(user, assertion.Passkey);
        await signIn.SignInAsync(user, isPersistent: false, authenticationMethod: "passkey");
        securityEvents.Record(user.Id, SecurityEventTypes.SignIn, subjectId: IdOf(assertion.Passkey.CredentialId), detail: "passkey");
        return new(user, null);
    }

    public static string IdOf(byte[] credentialId) => Base64Url.EncodeToString(credentialId);

    private static string CleanName(string? name)
    {
        var trimmed = new string([.. (name ?? "").Trim().Where(c => !char.IsControl(c))]);
        return trimmed.Length == 0 ? "Passkey" : trimmed.Length > NameMaxLength ? trimmed[..NameMaxLength] : trimmed;
    }
}

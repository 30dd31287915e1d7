using System.Security.Claims;
using Latchkey.Features.Accounts;
using Latchkey.Features.SecurityEvents;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using OpenIddict.Client.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Latchkey.Features.ExternalSignIn;

/// <summary>A configured identity provider, as buttons name it.</summary>
public sealed record ExternalProvider(string Name, string DisplayName);

/// <summary>Who the provider says came back: its id there, and the e-mail address (verified or not) and name it gave.</summary>
public sealed record ExternalIdentity(string Provider, string ProviderDisplayName, string Subject, string? Email, bool EmailVerified, string? Name)
{
    public UserLoginInfo Login => new(Provider, Subject, ProviderDisplayName);
}

/// <summary>
/// Accounts and the identities they sign in with elsewhere: the providers on offer, the identity
/// that just came back, linking one to an account and unlinking it.
/// </summary>
public sealed class ExternalAccounts(SignInManager<LatchkeyUser> signIn, SecurityEventLog securityEvents, IOptions<ExternalSignInOptions> options,
    IServiceProvider services)
{
    public IReadOnlyList<ExternalProvider> Providers { get; } =
        [.. options.Value.Providers.Select(p => new ExternalProvider(p.Key, ExternalSignInOptions.DisplayNameOf(p.Key, p.Value))).OrderBy(p => p.DisplayName)];

    public string DisplayNameOf(string provider) => Providers.FirstOrDefault(p => p.Name == provider)?.DisplayName ?? provider;

    /// <summary>Sends the browser to the provider; it comes back to <paramref name="then"/> (a path under <c>/account/external</c>).</summary>
    public Microsoft.AspNetCore.Mvc.ChallengeResult Challenge(string provider, string then) =>
        new(OpenIddictClientAspNetCoreDefaults.AuthenticationScheme, new AuthenticationProperties(new Dictionary<string, string?>
        {
            [OpenIddictClientAspNetCoreConstants.Properties.RegistrationId] = provider,
        })
        {
            RedirectUri = then,
        });

    /// <summary>Whether the provider's configuration can be read (OpenIddict caches it; GitHub's is built in).</summary>
    public async Task<bool> IsReachableAsync(string provider, CancellationToken cancellationToken)
    {
        var client = services.GetRequiredService<OpenIddict.Client.OpenIddictClientService>();
        try
        {
            var registration = await client.GetClientRegistrationByIdAsync(provider, cancellationToken);
            return registration.ConfigurationManager is null || await registration.ConfigurationManager.GetConfigurationAsync(cancellationToken) is not null;
        }
        catch (Exception exception) when (exception is InvalidOperationException or OpenIddict.Abstractions.OpenIddictExceptions.ProtocolException
                                              or HttpRequestException)
        {
            return false;
        }
    }

    public bool IsConfigured(string? provider) => provider is not null && Providers.Any(p => p.Name == provider);

    /// <summary>The identity the provider just vouched for (kept in Identity's short-lived external cookie), or null.</summary>
    public async Task<ExternalIdentity?> CurrentAsync()
    {
        var info = await signIn.GetExternalLoginInfoAsync();
        if (info is null || !IsConfigured(info.LoginProvider))
        {
            return null;
        }
        return new ExternalIdentity(info.LoginProvider, DisplayNameOf(info.LoginProvider), info.ProviderKey,
            info.Principal.FindFirstValue(ClaimTypes.Email), info.Principal.HasClaim(Claims.EmailVerified, "true"), info.Principal.FindFirstValue(ClaimTypes.Name));
    }

    public async Task<IdentityResult> LinkAsync(LatchkeyUser user, ExternalIdentity identity, string how)
    {
        var result = await signIn.UserManager.AddLoginAsync(user, identity.Login);
        if (result.Succeeded)
        {
            securityEvents.Record(user.Id, SecurityEventTypes.ExternalLoginAdded, subjectId: identity.Provider, detail: $"{identity.ProviderDisplayName}; {how}");
        }
        return result;
    }

    /// <summary>Unlinks a provider, unless it is the account's only way in (no password, no passkey, no other provider).</summary>
    public async Task<string?> UnlinkAsync(LatchkeyUser user, string provider)
    {
        var users = signIn.UserManager;
        var logins = await users.GetLoginsAsync(user);
        var login = logins.FirstOrDefault(l => l.LoginProvider == provider);
        if (login is null)
        {
            return "That sign-in method is not linked to your account.";
        }
        if (logins.Count == 1 && !await users.HasPasswordAsync(user) && (await users.GetPasskeysAsync(user)).Count == 0)
        {
            return $"{DisplayNameOf(provider)} is your only way to sign in: add a passkey first (or ask for a password reset by e-mail).";
        }
        var result = await users.RemoveLoginAsync(user, login.LoginProvider, login.ProviderKey);
        if (!result.Succeeded)
        {
            return string.Join(" ", result.Errors.Select(e => e.Description));
        }
        securityEvents.Record(user.Id, SecurityEventTypes.ExternalLoginRemoved, subjectId: provider, detail: DisplayNameOf(provider));
        return null;
    }
}

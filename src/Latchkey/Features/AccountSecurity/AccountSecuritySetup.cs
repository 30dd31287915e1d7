using Latchkey.Common;
using Latchkey.Features.Accounts;
using Latchkey.Features.Operations;
using Latchkey.Features.Settings;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.AccountSecurity;

/// <summary>
/// What protects a person's sign-in beyond the password: passkeys, a second factor (an
/// authenticator app with recovery codes), the list of signed-in browsers, and password change.
/// </summary>
public static class AccountSecuritySetup
{
    public const string SecurityPath = Site.ProfileNavigation.Security;
    public const string TwoFactorSetupPath = "/profile/security/two-factor";
    public const string TwoFactorSignInPath = "/account/sign-in/two-factor";

    /// <summary>How many recovery codes an account gets at a time.</summary>
    public const int RecoveryCodeCount = 10;

    public static WebApplicationBuilder AddAccountSecurity(this WebApplicationBuilder builder)
    {
        // Browser sessions live in the database, so that each can be listed and ended on every node.
        builder.Services.AddSingleton<DatabaseTicketStore>();
        builder.Services.AddOptions<CookieAuthenticationOptions>(IdentityConstants.ApplicationScheme)
            .Configure<DatabaseTicketStore>((cookie, store) => cookie.SessionStore = store);
        builder.Services.AddScoped<AccountSessions>();
        builder.Services.AddCleanupTask<AccountSessionCleanup>();

        // The second factor's secrets encrypted, recovery codes hashed (Identity's store keeps both as plain text).
        builder.Services.Replace(ServiceDescriptor.Scoped<IUserStore<LatchkeyUser>, ProtectedUserStore>());
        builder.Services.AddOptions<CookieAuthenticationOptions>(IdentityConstants.TwoFactorRememberMeScheme)
            .Configure<IOptions<AccountOptions>>((cookie, accounts) =>
            {
                cookie.Cookie.Name = "latchkey.remember-browser";
                cookie.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                cookie.ExpireTimeSpan = TimeSpan.FromDays(accounts.Value.RememberBrowserDays);
            });
        builder.Services.AddOptions<CookieAuthenticationOptions>(IdentityConstants.TwoFactorUserIdScheme)
            .Configure(cookie =>
            {
                cookie.Cookie.Name = "latchkey.sign-in-step";
                cookie.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            });

        // Passkeys: discoverable (sign in without typing an address) and verified by the device
        // (PIN or biometric), which is why a passkey sign-in needs no second factor.
        builder.Services.AddOptions<IdentityPasskeyOptions>().Configure<IOptions<ServerAddressOptions>>((passkeys, address) =>
        {
            passkeys.ResidentKeyRequirement = "required";
            passkeys.UserVerificationRequirement = "required";
            // Behind a configured issuer the passkeys belong to its host, not to whatever Host header a request carries.
            if (Uri.TryCreate(address.Value.Issuer, UriKind.Absolute, out var issuer))
            {
                passkeys.ServerDomain = issuer.Host;
            }
            // The passkey must have been used on this server's own origin (the issuer's, when one is
            // set), in a top-level page. Identity's default compares it with the request's Origin
            // header, which the pages' no-referrer policy makes "null" on a form post.
            passkeys.ValidateOrigin = context => ValueTask.FromResult(!context.CrossOrigin && string.Equals(context.Origin,
                new Uri(ServerAddress.Base(context.HttpContext)).GetLeftPart(UriPartial.Authority), StringComparison.OrdinalIgnoreCase));
        });
        builder.Services.AddScoped<Passkeys>();
        builder.Services.AddScoped<TwoFactor>();
        return builder;
    }

    /// <summary>
    /// An account that must use a second factor (an administrator's requirement for it, or the
    /// setting for admins) and has none yet goes to set it up before anything else.
    /// </summary>
    public static WebApplication UseAccountSecurity(this WebApplication app)
    {
        app.Use(async (context, next) =>
        {
            if (context.User.Identity is { IsAuthenticated: true, AuthenticationType: var type } && type == IdentityConstants.ApplicationScheme
                && !IsEnrolmentPath(context.Request.Path)
                && await context.RequestServices.GetRequiredService<TwoFactor>().MustEnrolAsync(context.User, context.RequestAborted))
            {
                if (HttpMethods.IsGet(context.Request.Method) && !context.Request.Path.StartsWithSegments("/api"))
                {
                    context.Response.Redirect(TwoFactorSetupPath);
                    return;
                }
                await Problems.WriteAsync(context, StatusCodes.Status403Forbidden,
                    $"This account must use two-factor authentication: set it up at {TwoFactorSetupPath} first.");
                return;
            }
            await next();
        });
        return app;
    }

    private static bool IsEnrolmentPath(PathString path) =>
        path.StartsWithSegments(TwoFactorSetupPath) || path.StartsWithSegments(AccountsSetup.SignOutPath) || path.StartsWithSegments("/assets");
}

using Latchkey.Cluster;
using Latchkey.Common;
using Latchkey.Storage;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Accounts;

public static class AccountsSetup
{
    public const string SignInPath = "/account/sign-in";
    public const string SignUpPath = "/account/sign-up";
    public const string SignOutPath = "/account/sign-out";
    public const string ForgotPasswordPath = "/account/forgot-password";
    public const string ResetPasswordPath = "/account/reset-password";
    public const string ConfirmEmailPath = "/account/confirm-email";

    /// <summary>Identity's schema with passkeys (version 3); the design-time factories build the model with the same.</summary>
    public static readonly Version IdentitySchemaVersion = IdentitySchemaVersions.Version3;

    /// <summary>How long a password reset (or e-mail confirmation) link works.</summary>
    public static readonly TimeSpan PasswordResetLifetime = TimeSpan.FromMinutes(60);

    /// <summary>ASP.NET Core Identity with cookie sign-in, lock-out and the account pages.</summary>
    public static WebApplicationBuilder AddAccounts(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<AccountOptions>().BindConfiguration(AccountOptions.SectionName)
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<AccountOptions>, AccountOptionsValidator>();

        builder.Services.AddScoped<UserProfiles>();
        builder.Services.AddSnapshotCache<UserProfile>(CacheScope.Users);
        builder.Services.AddCacheInvalidation<LatchkeyUser>(CacheScope.Users);
        builder.Services.AddSummarizedTable<LatchkeyUser>("users");

        builder.Services.AddIdentity<LatchkeyUser, IdentityRole>(options =>
            {
                options.Stores.SchemaVersion = IdentitySchemaVersion;
                options.User.RequireUniqueEmail = true;
                // Length over composition rules (NIST SP 800-63B).
                options.Password.RequiredLength = AccountLimits.PasswordMinLength;
                options.Password.RequireDigit = false;
                options.Password.RequireLowercase = false;
                options.Password.RequireUppercase = false;
                options.Password.RequireNonAlphanumeric = false;
                options.Password.RequiredUniqueChars = 4;
                options.Lockout.AllowedForNewUsers = true;
            })
            .AddEntityFrameworkStores<LatchkeyDbContext>()
            .AddDefaultTokenProviders();

        builder.Services.AddOptions<IdentityOptions>().Configure<IOptions<AccountOptions>>((identity, accounts) =>
        {
            identity.Lockout.MaxFailedAccessAttempts = accounts.Value.MaxFailedSignInAttempts;
            identity.Lockout.DefaultLockoutTimeSpan = TimeSpan.FromMinutes(accounts.Value.LockoutMinutes);
            identity.SignIn.RequireConfirmedEmail = accounts.Value.RequireConfirmedEmail;
        });

        builder.Services.ConfigureApplicationCookie(cookie =>
        {
            cookie.Cookie.Name = "latchkey.session";
            cookie.Cookie.HttpOnly = true;
            cookie.Cookie.SameSite = SameSiteMode.Lax;
            // Secure whenever the request came over https (behind a proxy: Server:TrustForwardedHeaders).
            cookie.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            cookie.Cookie.Path = "/";
            cookie.CookieManager = new SessionCookies(new Microsoft.AspNetCore.Authentication.Cookies.ChunkingCookieManager());
            cookie.LoginPath = SignInPath;
            cookie.LogoutPath = SignOutPath;
            cookie.AccessDeniedPath = SignInPath;
            cookie.SlidingExpiration = true;
            // JSON APIs answer 401/403 problem details; only pages redirect to the sign-in page.
            cookie.Events.OnRedirectToLogin = ApiAwareRedirect;
            cookie.Events.OnValidatePrincipal = SessionValidation.ValidatePrincipalAsync;
            // Signed in but not allowed (an admin page): sending a signed-in person to the sign-in page would only confuse.
            cookie.Events.OnRedirectToAccessDenied = context => Problems.WriteAsync(context.HttpContext, StatusCodes.Status403Forbidden,
                "Your account may not do this.");
        });
        builder.Services.AddOptions<Microsoft.AspNetCore.Authentication.Cookies.CookieAuthenticationOptions>(IdentityConstants.ApplicationScheme)
            .Configure<IOptions<AccountOptions>>((cookie, accounts) =>
                cookie.ExpireTimeSpan = TimeSpan.FromMinutes(accounts.Value.SessionMinutes));

        // The antiforgery cookie is Secure over https too (its default sets no Secure flag at all).
        builder.Services.AddAntiforgery(options => options.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest);
        builder.Services.Configure<DataProtectionTokenProviderOptions>(options => options.TokenLifespan = PasswordResetLifetime);
        // Identity's periodic check refreshes a session's claims; ending sessions is at once (SessionValidation).
        builder.Services.Configure<SecurityStampValidatorOptions>(options => options.ValidationInterval = TimeSpan.FromMinutes(5));
        builder.Services.TryAddSingleton<IAccountEmailSender, LogAccountEmailSender>();
        builder.Services.AddScoped<AccountRegistration>();
        builder.Services.AddScoped<AccountConfirmation>();
        builder.Services.AddRazorPages(options => options.RootDirectory = "/Features");
        return builder;
    }

    public static WebApplication MapAccounts(this WebApplication app)
    {
        app.MapRazorPages();
        return app;
    }

    private static Task ApiAwareRedirect(Microsoft.AspNetCore.Authentication.RedirectContext<Microsoft.AspNetCore.Authentication.Cookies.CookieAuthenticationOptions> context)
    {
        if (!context.Request.Path.StartsWithSegments("/api"))
        {
            context.Response.Redirect(context.RedirectUri);
            return Task.CompletedTask;
        }
        return Problems.WriteAsync(context.HttpContext, StatusCodes.Status401Unauthorized, "Sign in first: this endpoint uses the browser session cookie.");
    }
}

/// <summary>Refuses at start a confirmation that nobody could ever give: required, with no way to send the link.</summary>
internal sealed class AccountOptionsValidator(IAccountEmailSender sender, IHostEnvironment environment) : IValidateOptions<AccountOptions>
{
    public ValidateOptionsResult Validate(string? name, AccountOptions options) =>
        options.RequireConfirmedEmail && !AccountConfirmation.CanDeliver(sender, environment)
            ? ValidateOptionsResult.Fail("Accounts:RequireConfirmedEmail needs a way to send the confirmation link: set Email:SmtpHost " +
                                         "(docs/configuration.md, \"Accounts e-mail\"), or leave it off.")
            : ValidateOptionsResult.Success;
}

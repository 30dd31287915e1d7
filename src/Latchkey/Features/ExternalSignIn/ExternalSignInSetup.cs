using System.Security.Claims;
using Latchkey.Features.AuthorizationServer.Keys;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Client;
using OpenIddict.Client.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;
using OpenIddictScopes = OpenIddict.Abstractions.OpenIddictConstants.Scopes;

namespace Latchkey.Features.ExternalSignIn;

/// <summary>
/// "Sign in with GitHub / Google / Microsoft / your company's OpenID Connect issuer", through
/// OpenIddict's client. Only configured when at least one provider is (<c>ExternalSignIn:Providers</c>):
/// without one, nothing of it is registered and nothing runs per request.
/// </summary>
public static class ExternalSignInSetup
{
    public const string CallbackPath = "/account/external/callback";
    public const string ExternalPath = "/account/external";

    /// <summary>The item of the external cookie's properties that names the provider (Identity's <c>GetExternalLoginInfoAsync</c> reads it).</summary>
    private const string LoginProviderKey = "LoginProvider";

    public static WebApplicationBuilder AddExternalSignIn(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<ExternalSignInOptions>().BindConfiguration(ExternalSignInOptions.SectionName).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<ExternalSignInOptions>, ExternalSignInOptionsValidator>();
        // The pages ask it which providers to offer (none, when none is configured).
        builder.Services.AddScoped<ExternalAccounts>();
        var configured = builder.Configuration.GetSection(ExternalSignInOptions.SectionName).Get<ExternalSignInOptions>() ?? new();
        if (configured.Providers.Count == 0)
        {
            return builder;
        }

        builder.Services.AddOpenIddict().AddClient(client =>
        {
            client.AllowAuthorizationCodeFlow();
            client.UseSystemNetHttp().SetProductInformation(typeof(ExternalSignInSetup).Assembly);
            client.UseAspNetCore()
                .EnableRedirectionEndpointPassthrough()
                // A refusal or a forged callback reaches the callback too, which shows a page instead of a bare 400.
                .EnableErrorPassthrough()
                // TLS is usually terminated in front of Latchkey (as for the authorization server);
                // the correlation cookie is Secure whenever the request came over https, like every other cookie.
                .DisableTransportSecurityRequirement()
                .Configure(options => options.CookieBuilder = new CorrelationCookieBuilder { Name = options.CookieBuilder.Name, HttpOnly = true });
            client.SetRedirectionEndpointUris(CallbackPath[1..]);
            var web = client.UseWebProviders();
            foreach (var (name, provider) in configured.Providers)
            {
                var displayName = ExternalSignInOptions.DisplayNameOf(name, provider);
                switch (provider.Type)
                {
                    case ExternalProviderType.GitHub:
                        web.AddGitHub(github => github.SetRegistrationId(name).SetProviderName(name).SetProviderDisplayName(displayName)
                            .SetClientId(provider.ClientId).SetClientSecret(provider.ClientSecret!).SetRedirectUri(CallbackPath[1..])
                            .AddScopes(["user:email", .. provider.Scopes]));
                        break;
                    case ExternalProviderType.Google:
                        web.AddGoogle(google => google.SetRegistrationId(name).SetProviderName(name).SetProviderDisplayName(displayName)
                            .SetClientId(provider.ClientId).SetClientSecret(provider.ClientSecret!).SetRedirectUri(CallbackPath[1..])
                            .AddScopes([OpenIddictScopes.Email, OpenIddictScopes.Profile, .. provider.Scopes]));
                        break;
                    case ExternalProviderType.Microsoft:
                        web.AddMicrosoft(microsoft =>
                        {
                            microsoft.SetRegistrationId(name).SetProviderName(name).SetProviderDisplayName(displayName)
                                .SetClientId(provider.ClientId).SetClientSecret(provider.ClientSecret!).SetRedirectUri(CallbackPath[1..])
                                .AddScopes([OpenIddictScopes.Email, OpenIddictScopes.Profile, .. provider.Scopes]);
                            if (!string.IsNullOrWhiteSpace(provider.Tenant))
                            {
                                microsoft.SetTenant(provider.Tenant);
                            }
                        });
                        break;
                    default:
                        var registration = new OpenIddictClientRegistration
                        {
                            RegistrationId = name,
                            ProviderName = name,
                            ProviderDisplayName = displayName,
                            Issuer = new Uri(provider.Issuer!, UriKind.Absolute),
                            ClientId = provider.ClientId,
                            ClientSecret = provider.ClientSecret,
                            RedirectUri = new Uri(CallbackPath[1..], UriKind.Relative),
                        };
                        foreach (var scope in new[] { OpenIddictScopes.OpenId, OpenIddictScopes.Email, OpenIddictScopes.Profile }.Concat(provider.Scopes).Distinct(StringComparer.Ordinal))
                        {
                            registration.Scopes.Add(scope);
                        }
                        client.AddRegistration(registration);
                        break;
                }
            }
        });
        // The client's state tokens are signed and encrypted with the authorization server's keys:
        // kept encrypted under the master key, the same on every node, rotated with them.
        builder.Services.AddSingleton<IConfigureOptions<OpenIddictClientOptions>, ClientKeyOptionsSetup>();
        return builder;
    }

    public static WebApplication MapExternalSignIn(this WebApplication app)
    {
        if (app.Services.GetService<OpenIddictClientService>() is null)
        {
            return app;
        }
        // The provider comes back here; OpenIddict has checked the state, redeemed the code and
        // validated the identity token before this runs.
        app.MapMethods(CallbackPath, [HttpMethods.Get, HttpMethods.Post], async (HttpContext context, ILogger<ExternalAccounts> logger) =>
        {
            var result = await context.AuthenticateAsync(OpenIddictClientAspNetCoreDefaults.AuthenticationScheme);
            if (result.Principal is not { Identity.IsAuthenticated: true } principal)
            {
                // The provider's (or OpenIddict's) error code and description: never a code or token.
                var error = result.Properties?.GetString(OpenIddictClientAspNetCoreConstants.Properties.Error) ?? result.Failure?.GetType().Name ?? "none";
                var description = result.Properties?.GetString(OpenIddictClientAspNetCoreConstants.Properties.ErrorDescription) ?? result.Failure?.Message ?? "";
                ExternalSignInLog.CallbackFailed(logger, error, description);
                return Results.Redirect($"{ExternalPath}?failed=1");
            }
            var subject = principal.FindFirstValue(ClaimTypes.NameIdentifier) ?? principal.FindFirstValue(Claims.Subject);
            var provider = principal.FindFirstValue(Claims.Private.RegistrationId);
            if (subject is null || provider is null)
            {
                return Results.Redirect($"{ExternalPath}?failed=1");
            }
            // What Identity's external-login step reads: the provider, the person's id there, and what it said about them.
            var identity = new ClaimsIdentity(IdentityConstants.ExternalScheme);
            identity.AddClaim(new Claim(ClaimTypes.NameIdentifier, subject));
            if ((principal.FindFirstValue(ClaimTypes.Email) ?? principal.FindFirstValue(Claims.Email)) is { Length: > 0 } email)
            {
                identity.AddClaim(new Claim(ClaimTypes.Email, email));
            }
            if ((principal.FindFirstValue(ClaimTypes.Name) ?? principal.FindFirstValue(Claims.Name)) is { Length: > 0 } name)
            {
                identity.AddClaim(new Claim(ClaimTypes.Name, name));
            }
            if (string.Equals(principal.FindFirstValue(Claims.EmailVerified), "true", StringComparison.OrdinalIgnoreCase))
            {
                identity.AddClaim(new Claim(Claims.EmailVerified, "true"));
            }
            var properties = new AuthenticationProperties { Items = { [LoginProviderKey] = provider } };
            await context.SignInAsync(IdentityConstants.ExternalScheme, new ClaimsPrincipal(identity), properties);
            var next = result.Properties?.RedirectUri;
            return Results.Redirect(next is not null && next.StartsWith(ExternalPath, StringComparison.Ordinal) ? next : ExternalPath);
        }).ExcludeFromDescription().AllowAnonymous();
        return app;
    }
}

/// <summary>
/// OpenIddict's correlation cookie is <c>SameSite=None</c>, so that a provider's answer posted back
/// from its own site (<c>response_mode=form_post</c>) still carries it; browsers keep such a cookie
/// only when it is Secure. Over https it is so; over plain http (a development machine, a proxy
/// that does not say https) it is <c>Lax</c> and Secure is left off, and answers come back as a
/// redirect, which carries a Lax cookie.
/// </summary>
internal sealed class CorrelationCookieBuilder : CookieBuilder
{
    public override CookieOptions Build(HttpContext context, DateTimeOffset expiresFrom)
    {
        var options = base.Build(context, expiresFrom);
        options.Secure = context.Request.IsHttps;
        options.SameSite = context.Request.IsHttps ? SameSiteMode.None : SameSiteMode.Lax;
        return options;
    }
}

/// <summary>Gives OpenIddict's client the authorization server's current symmetric keys (rebuilt with them after a rotation).</summary>
internal sealed class ClientKeyOptionsSetup(ServerKeySet keys) : IConfigureOptions<OpenIddictClientOptions>
{
    public void Configure(OpenIddictClientOptions options)
    {
        var (_, encryption, tokenSigning) = keys.Current;
        foreach (var key in tokenSigning)
        {
            options.SigningCredentials.Add(new SigningCredentials(key, SecurityAlgorithms.HmacSha256));
        }
        foreach (var key in encryption)
        {
            options.EncryptionCredentials.Add(new EncryptingCredentials(key, SecurityAlgorithms.Aes256KW, SecurityAlgorithms.Aes256CbcHmacSha512));
        }
    }
}

internal static partial class ExternalSignInLog
{
    [LoggerMessage(Level = LogLevel.Warning, Message = "Sign-in with another identity did not finish: {Error} {Description}")]
    public static partial void CallbackFailed(ILogger logger, string error, string description);
}

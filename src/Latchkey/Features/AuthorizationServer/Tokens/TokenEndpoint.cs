using Latchkey.Features.Accounts;
using Latchkey.Features.AuthorizationServer.Apps;
using Latchkey.Features.AuthorizationServer.Grants;
using Latchkey.Features.AuthorizationServer.Stores;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

using OidcScopes = OpenIddict.Abstractions.OpenIddictConstants.Scopes;

namespace Latchkey.Features.AuthorizationServer.Tokens;

/// <summary>
/// The decisions OpenIddict leaves to the app at the token and userinfo endpoints. OpenIddict has
/// already authenticated the client and validated the code or refresh token (PKCE, redirect URI,
/// single use, rotation) when these run.
/// </summary>
public static class TokenEndpoint
{
    public static WebApplication MapTokenEndpoint(this WebApplication app)
    {
        app.MapPost(AuthorizationServerSetup.TokenPath, ExchangeAsync)
            .WithTags("OAuth")
            .WithSummary("Token endpoint (RFC 6749): authorization_code with PKCE, refresh_token, client_credentials, device_code (RFC 8628), token exchange (RFC 8693)")
            .WithDescription("Form-encoded or JSON. Answers both RFC 6749 fields (expires_in, scope) and the reference shape (access_token_expires_at, refresh_token_expires_at, scopes).")
            .ExcludeFromDescription();
        return app;
    }

    public static WebApplication MapUserInfoEndpoint(this WebApplication app)
    {
        app.MapMethods(AuthorizationServerSetup.UserInfoPath, [HttpMethods.Get, HttpMethods.Post], UserInfoAsync)
            .ExcludeFromDescription();
        return app;
    }

    private static async Task<IResult> ExchangeAsync(
        HttpContext context, UserManager<LatchkeyUser> users, OAuthApplicationManager applications, OAuthPrincipals principals)
    {
        if (context.GetOpenIddictServerRequest() is not { } request)
        {
            return NotAnOAuthRequest();
        }

        if (request.IsClientCredentialsGrantType())
        {
            var application = await applications.FindByClientIdAsync(request.ClientId!, context.RequestAborted)
                              ?? throw new InvalidOperationException("The client was authenticated but cannot be found.");
            // No scope asked for: the scopes the app is registered for (RFC 6749 §3.3's pre-defined
            // default), never the OpenID ones, which describe a user.
            var scopes = request.GetScopes();
            if (scopes.IsDefaultOrEmpty)
            {
                scopes = [.. OAuthAppService.ScopesOf(application.Permissions).Where(scope => !AuthorizationServerSetup.OpenIdScopes.Contains(scope))];
            }
            var principal = principals.ForApplication(application.ClientId!, application.DisplayName, scopes, request.GetResources());
            return Results.SignIn(principal, authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        }

        if (request.IsAuthorizationCodeGrantType() || request.IsRefreshTokenGrantType() || request.IsDeviceCodeGrantType())
        {
            var result = await context.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
            var subject = result.Principal?.GetClaim(Claims.Subject);
            var user = subject is null ? null : await users.FindByIdAsync(subject);
            if (user is null)
            {
                return Refuse(Errors.InvalidGrant, "The account this grant was issued for no longer exists.");
            }
            if (await users.IsLockedOutAsync(user))
            {
                return Refuse(Errors.InvalidGrant, "The account is locked.");
            }

            // Re-issue from the stored grant with the user's current details.
            var stored = result.Principal!;
            var principal = principals.ForUser(user, stored.GetScopes(), stored.GetResources(),
                offlineAccessImplied: stored.GetClaim(OAuthPrincipals.OfflineAccessImpliedClaim) is not null, stored.GetAuthorizationId());
            return Results.SignIn(principal, authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        }

        if (request.IsTokenExchangeGrantType())
        {
            return await TokenExchange.ExchangeAsync(context, request, users, principals, context.RequestServices.GetRequiredService<TimeProvider>());
        }

        return Refuse(Errors.UnsupportedGrantType, "Use authorization_code, refresh_token, client_credentials, the device code grant or token exchange.");
    }

    private static async Task<IResult> UserInfoAsync(HttpContext context, UserManager<LatchkeyUser> users)
    {
        if (context.GetOpenIddictServerRequest() is null)
        {
            return NotAnOAuthRequest();
        }
        var result = await context.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        var subject = result.Principal?.GetClaim(Claims.Subject);
        var user = subject is null ? null : await users.FindByIdAsync(subject);
        if (user is null)
        {
            return Results.Challenge(
                ErrorProperties(Errors.InvalidToken, "The token's account no longer exists."),
                [OpenIddictServerAspNetCoreDefaults.AuthenticationScheme]);
        }

        var scopes = result.Principal!.GetScopes();
        var claims = new Dictionary<string, object?>(StringComparer.Ordinal) { [Claims.Subject] = user.Id };
        if (scopes.Contains(OidcScopes.Profile))
        {
            claims[Claims.Name] = user.DisplayName;
            claims[Claims.Zoneinfo] = user.TimeZone;
        }
        if (scopes.Contains(OidcScopes.Email))
        {
            claims[Claims.Email] = user.Email;
            claims[Claims.EmailVerified] = user.EmailConfirmed;
        }
        return Results.Json(claims);
    }

    /// <summary>
    /// OpenIddict recognises its endpoints by the full request address; one it could not build
    /// (a Host header it refuses) reaches these passthrough endpoints without an OAuth request.
    /// </summary>
    internal static IResult NotAnOAuthRequest() => Results.Json(new Dictionary<string, string>
    {
        [Parameters.Error] = Errors.InvalidRequest,
        [Parameters.ErrorDescription] = "The request cannot be read as an OAuth request; check its Host header and address.",
    }, statusCode: StatusCodes.Status400BadRequest);

    internal static IResult Refuse(string error, string description) =>
        Results.Forbid(ErrorProperties(error, description), [OpenIddictServerAspNetCoreDefaults.AuthenticationScheme]);

    /// <summary>What OpenIddict needs to answer an OAuth error from a passthrough endpoint.</summary>
    internal static AuthenticationProperties ErrorProperties(string error, string description) =>
        new(new Dictionary<string, string?>
        {
            [OpenIddictServerAspNetCoreConstants.Properties.Error] = error,
            [OpenIddictServerAspNetCoreConstants.Properties.ErrorDescription] = description,
        });

}

using System.Security.Claims;
using Latchkey.Common;
using Latchkey.Features.Accounts;
using Latchkey.Features.AuthorizationServer.Grants;
using Latchkey.Features.AuthorizationServer.Stores;
using Latchkey.Storage;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Features.AuthorizationServer.Apps;

/// <summary>The answer to registering an app or rotating its secret: the only time the secret is shown.</summary>
public sealed record OAuthAppCreatedResponse(OAuthAppView App, string? ClientSecret);

public sealed record OAuthAppList(IReadOnlyList<OAuthAppView> Apps);

public sealed record AuthorizedAppList(IReadOnlyList<AuthorizedApp> Apps);

public sealed record ClientSecretResponse(string ClientId, string ClientSecret);

public static class OAuthAppEndpoints
{
    public static WebApplication MapOAuthAppEndpoints(this WebApplication app)
    {
        var owner = app.MapGroup("/api/oauth/apps")
            .WithTags("OAuth apps")
            .RequireBrowserSession();

        owner.MapPost("/", CreateAsync).WithSummary("Register an app (the client secret is shown once)");
        owner.MapGet("/", ListAsync).WithSummary("List your apps");
        owner.MapPatch("/{clientId}", UpdateAsync).WithSummary("Change your app's name, description, homepage, redirect URIs or scopes");
        owner.MapPost("/{clientId}/disable", (string clientId, ClaimsPrincipal user, OAuthAppService apps, CancellationToken ct) => SetEnabledAsync(clientId, false, user, apps, ct))
            .WithSummary("Disable your app: its tokens stop working at once and it cannot start new flows");
        owner.MapPost("/{clientId}/enable", (string clientId, ClaimsPrincipal user, OAuthAppService apps, CancellationToken ct) => SetEnabledAsync(clientId, true, user, apps, ct))
            .WithSummary("Enable your app again");
        owner.MapPost("/{clientId}/rotate-secret", RotateSecretAsync).WithSummary("Replace your app's client secret (shown once)");
        owner.MapDelete("/{clientId}", DeleteAsync).WithSummary("Delete your app with all its grants and tokens");
        owner.MapPut("/{clientId}/logo", UploadLogoAsync)
            .WithSummary("Upload your app's logo (PNG, JPEG, WebP or SVG; at most 256 KiB)")
            .Accepts<byte[]>("image/png", "image/jpeg", "image/webp", "image/svg+xml");

        // Public: the consent page and client apps show these.
        var publicApps = app.MapGroup("/api/oauth/apps").WithTags("OAuth apps");
        publicApps.MapGet("/{clientId}", GetPublicInfoAsync).WithSummary("Public information about an app").AllowAnonymous();
        publicApps.MapGet("/{clientId}/logo", GetLogoAsync).WithSummary("An app's logo").AllowAnonymous().ExcludeFromDescription();
        return app;
    }

    public static WebApplication MapUserGrantEndpoints(this WebApplication app)
    {
        var grants = app.MapGroup("/api/oauth/authorizations")
            .WithTags("Authorized apps")
            .RequireBrowserSession();
        grants.MapGet("/", async (ClaimsPrincipal user, UserGrants userGrants, CancellationToken ct) =>
                TypedResults.Ok(new AuthorizedAppList(await userGrants.ListAsync(user.UserId(), ct))))
            .WithSummary("The apps you have authorized, with their scopes and when they were last used");
        grants.MapDelete("/{clientId}", async Task<Results<NoContent, ProblemHttpResult>> (string clientId, ClaimsPrincipal user, UserGrants userGrants, CancellationToken ct) =>
                await userGrants.RevokeAsync(user.UserId(), clientId, ct) ? TypedResults.NoContent() : NotFound(clientId))
            .WithSummary("Revoke an app's access: every token it holds for you stops working");
        return app;
    }

    private static async Task<Results<Created<OAuthAppCreatedResponse>, ValidationProblem>> CreateAsync(
        OAuthAppRequest request, ClaimsPrincipal user, OAuthAppService apps, CancellationToken cancellationToken)
    {
        var (created, errors) = await apps.CreateAsync(user.UserId(), request, cancellationToken);
        if (created is null)
        {
            return TypedResults.ValidationProblem(errors, detail: "The app was not registered.");
        }
        var view = apps.View(created.Application);
        return TypedResults.Created($"/api/oauth/apps/{view.ClientId}", new OAuthAppCreatedResponse(view, created.ClientSecret));
    }

    private static async Task<Ok<OAuthAppList>> ListAsync(ClaimsPrincipal user, OAuthAppService apps, CancellationToken cancellationToken) =>
        TypedResults.Ok(new OAuthAppList(await apps.ListOwnedAsync(user.UserId(), cancellationToken)));

    private static async Task<Results<Ok<OAuthAppView>, ValidationProblem, ProblemHttpResult>> UpdateAsync(
        string clientId, OAuthAppRequest request, ClaimsPrincipal user, OAuthAppService apps, CancellationToken cancellationToken)
    {
        var app = await apps.FindOwnedAsync(user.UserId(), clientId, cancellationToken);
        if (app is null)
        {
            return NotFound(clientId);
        }
        var errors = await apps.UpdateAsync(app, request, cancellationToken);
        return errors.Count > 0
            ? TypedResults.ValidationProblem(errors, detail: "The app was not changed.")
            : TypedResults.Ok(apps.View(app));
    }

    private static async Task<Results<Ok<OAuthAppView>, ProblemHttpResult>> SetEnabledAsync(
        string clientId, bool enabled, ClaimsPrincipal user, OAuthAppService apps, CancellationToken cancellationToken)
    {
        var app = await apps.FindOwnedAsync(user.UserId(), clientId, cancellationToken);
        if (app is null)
        {
            return NotFound(clientId);
        }
        await apps.SetEnabledAsync(app, enabled, cancellationToken);
        return TypedResults.Ok(apps.View(app));
    }

    private static async Task<Results<Ok<ClientSecretResponse>, ProblemHttpResult>> RotateSecretAsync(
        string clientId, ClaimsPrincipal user, OAuthAppService apps, CancellationToken cancellationToken)
    {
        var app = await apps.FindOwnedAsync(user.UserId(), clientId, cancellationToken);
        if (app is null)
        {
            return NotFound(clientId);
        }
        var secret = await apps.RotateSecretAsync(app, cancellationToken);
        return secret is null
            ? TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, detail: "Public apps have no client secret to rotate.")
            : TypedResults.Ok(new ClientSecretResponse(clientId, secret));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        string clientId, ClaimsPrincipal user, OAuthAppService apps, CancellationToken cancellationToken)
    {
        var app = await apps.FindOwnedAsync(user.UserId(), clientId, cancellationToken);
        if (app is null)
        {
            return NotFound(clientId);
        }
        await apps.DeleteAsync(app, cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<Results<Ok<OAuthAppPublicInfo>, ProblemHttpResult>> GetPublicInfoAsync(
        string clientId, OAuthAppService apps, CancellationToken cancellationToken) =>
        await apps.GetPublicInfoAsync(clientId, cancellationToken) is { } info ? TypedResults.Ok(info) : NotFound(clientId);

    private static async Task<Results<Ok<OAuthAppView>, ProblemHttpResult>> UploadLogoAsync(
        string clientId, HttpRequest request, ClaimsPrincipal user, OAuthAppService apps, CancellationToken cancellationToken)
    {
        var app = await apps.FindOwnedAsync(user.UserId(), clientId, cancellationToken);
        if (app is null)
        {
            return NotFound(clientId);
        }
        if (request.ContentLength is > OAuthAppLimits.LogoMaxBytes)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, detail: $"The logo may be at most {OAuthAppLimits.LogoMaxBytes / 1024} KiB.");
        }
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, cancellationToken);
        if (buffer.Length > OAuthAppLimits.LogoMaxBytes)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, detail: $"The logo may be at most {OAuthAppLimits.LogoMaxBytes / 1024} KiB.");
        }
        var error = await apps.SetLogoAsync(app, request.ContentType, buffer.ToArray(), cancellationToken);
        if (error is not null)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status415UnsupportedMediaType, detail: error);
        }
        return TypedResults.Ok(apps.View(app));
    }

    private static async Task<IResult> GetLogoAsync(string clientId, HttpContext context, LatchkeyDbContext db, CancellationToken cancellationToken)
    {
        var logo = await db.OAuthAppLogos.AsNoTracking()
            .Where(l => db.OAuthApplications.Any(a => a.Id == l.ApplicationId && a.ClientId == clientId))
            .FirstOrDefaultAsync(cancellationToken);
        if (logo is null)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, detail: $"The app {InputEcho.Quote(clientId)} has no logo.");
        }
        var headers = context.Response.Headers;
        headers.CacheControl = "public, max-age=31536000, immutable";
        headers.XContentTypeOptions = "nosniff";
        // An SVG opened directly must not run anything.
        headers.ContentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; sandbox";
        return TypedResults.File(logo.Content, logo.ContentType);
    }

    private static ProblemHttpResult NotFound(string clientId) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, detail: $"No app {InputEcho.Quote(clientId)} of yours was found.");

}

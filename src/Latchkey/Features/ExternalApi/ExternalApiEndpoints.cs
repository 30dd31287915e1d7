using System.Security.Claims;
using Latchkey.Features.Accounts;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Latchkey.Features.ExternalApi;

/// <summary>The signed-in user's identity, as <c>GET /external-api/v1/me</c> answers it.</summary>
public sealed record MeResponse(string Id, string Name, string? Email, string Timezone);

internal static class ExternalApiEndpoints
{
    /// <summary>
    /// The API third parties call with an API key or an access token. Each endpoint names the
    /// scope it needs with <see cref="ScopeAuthorizationExtensions.RequireScope{TBuilder}"/>.
    /// </summary>
    public static void MapExternalApiEndpoints(this IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup("/external-api/v1").WithTags("External API")
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden);

        v1.MapGet("/me", GetMeAsync)
            .RequireScope("IDENTITY")
            .WithSummary("The user the credential acts for")
            .WithDescription("Needs the IDENTITY scope. Authenticate with X-API-Key or Authorization: Bearer.");
    }

    private static async Task<Results<Ok<MeResponse>, ProblemHttpResult>> GetMeAsync(ClaimsPrincipal caller, UserProfiles users, CancellationToken cancellationToken)
    {
        if (caller.FindFirstValue(ClaimTypes.NameIdentifier) is not { } userId)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden,
                detail: ExternalApiClaims.NoUserDetail);
        }
        var user = await users.FindAsync(userId, cancellationToken);
        // A credential outliving its user is refused like any invalid credential.
        return user is null
            ? TypedResults.Problem(statusCode: StatusCodes.Status401Unauthorized, detail: "The credential's account no longer exists.")
            : TypedResults.Ok(new MeResponse(user.Id, user.DisplayName, user.Email, user.TimeZone));
    }
}

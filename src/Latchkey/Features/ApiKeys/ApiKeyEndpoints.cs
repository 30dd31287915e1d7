using System.Security.Claims;
using Latchkey.Common;
using Latchkey.Features.Accounts;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Latchkey.Features.ApiKeys;

public sealed record CreateApiKeyRequest(string? Name, string[]? Scopes, DateTimeOffset? ExpiresAt);

/// <summary>An API key as listed: everything but the secret.</summary>
public sealed record ApiKeyView(
    string Id, string Name, string Prefix, IReadOnlyList<string> Scopes,
    DateTimeOffset CreatedAt, DateTimeOffset? LastUsedAt, DateTimeOffset? ExpiresAt)
{
    public static ApiKeyView From(ApiKey key) =>
        new(key.Id, key.Name, key.DisplayPrefix, key.ScopeList, key.CreatedAt, key.LastUsedAt, key.ExpiresAt);
}

/// <summary>The answer to a create: the only time the key itself is shown.</summary>
public sealed record CreatedApiKeyResponse(
    string Id, string Name, string Key, string Prefix, IReadOnlyList<string> Scopes,
    DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt);

public sealed record ApiKeyList(IReadOnlyList<ApiKeyView> Keys);

internal static class ApiKeyEndpoints
{
    /// <summary>Key management for the signed-in user (browser session cookie).</summary>
    public static void MapApiKeyEndpoints(this IEndpointRouteBuilder app)
    {
        var keys = app.MapGroup("/api/keys")
            .WithTags("API keys")
            .RequireBrowserSession();

        keys.MapPost("/", CreateAsync)
            .WithSummary("Create an API key")
            .WithDescription("The key is in the response once; only its hash is stored. Scopes come from the scope catalog (GET /api/scopes).");
        keys.MapGet("/", ListAsync).WithSummary("List your active API keys");
        keys.MapGet("/{id}", GetAsync).WithSummary("Show one API key");
        keys.MapDelete("/{id}", RevokeAsync).WithSummary("Revoke an API key");
    }

    private static async Task<Results<Created<CreatedApiKeyResponse>, ValidationProblem>> CreateAsync(
        CreateApiKeyRequest request, ClaimsPrincipal user, ApiKeyService service, CancellationToken cancellationToken)
    {
        var (created, errors) = await service.CreateAsync(user.UserId(), request.Name, request.Scopes, request.ExpiresAt, cancellationToken);
        if (created is null)
        {
            return TypedResults.ValidationProblem(errors, detail: "The API key was not created.");
        }
        var key = created.Key;
        return TypedResults.Created($"/api/keys/{key.Id}", new CreatedApiKeyResponse(
            key.Id, key.Name, created.Secret, key.DisplayPrefix, key.ScopeList, key.CreatedAt, key.ExpiresAt));
    }

    private static async Task<Ok<ApiKeyList>> ListAsync(ClaimsPrincipal user, ApiKeyService service, CancellationToken cancellationToken)
    {
        var keys = await service.ListAsync(user.UserId(), cancellationToken);
        return TypedResults.Ok(new ApiKeyList(keys.ConvertAll(ApiKeyView.From)));
    }

    private static async Task<Results<Ok<ApiKeyView>, ProblemHttpResult>> GetAsync(
        string id, ClaimsPrincipal user, ApiKeyService service, CancellationToken cancellationToken)
    {
        var key = await service.FindAsync(user.UserId(), id, cancellationToken);
        return key is null ? NotFound(id) : TypedResults.Ok(ApiKeyView.From(key));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> RevokeAsync(
        string id, ClaimsPrincipal user, ApiKeyService service, CancellationToken cancellationToken) =>
        await service.RevokeAsync(user.UserId(), id, cancellationToken) ? TypedResults.NoContent() : NotFound(id);

    private static ProblemHttpResult NotFound(string id) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, detail: $"You have no active API key {InputEcho.Quote(id)}.");
}

using System.Security.Claims;
using Latchkey.Common;
using Latchkey.Features.ExternalApi;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.SecurityEvents;

public sealed record SecurityEventList(IReadOnlyList<SecurityEventView> Events, string? NextCursor);

/// <summary>
/// The account's security events for its owner: <c>GET /external-api/v1/security-events</c> (paged,
/// newest first) and <c>/export</c> (the whole history within the filters, streamed), with an API
/// key or access token carrying <see cref="Scope"/>.
/// </summary>
public static class SecurityEventEndpoints
{
    public const string Scope = "READ_SECURITY_EVENTS";
    public const string Path = "/external-api/v1/security-events";

    internal static void MapSecurityEventEndpoints(this IEndpointRouteBuilder app)
    {
        var events = app.MapGroup(Path).WithTags("Security events")
            .RequireScope(Scope)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden);

        events.MapGet("/", ListAsync)
            .WithSummary("Your account's security events, newest first")
            .WithDescription($"Needs the {Scope} scope. Filters: type (repeat or comma-separate; one of {string.Join(", ", SecurityEventTypes.All)}), " +
                             $"since and until (ISO 8601; since inclusive, until exclusive), limit (1 to {SecurityEventHistory.MaxPageSize}, default {SecurityEventHistory.DefaultPageSize}). " +
                             "Pass next_cursor back as cursor for the next, older page; it is null on the last page.");
        events.MapGet("/export", Export)
            .WithSummary("Download your whole security history within the filters (JSON Lines or CSV)")
            .WithDescription($"Needs the {Scope} scope. format=jsonl (default) or csv; the type, since and until filters as for the list. Streamed as an attachment, newest first.")
            // One event per line (as the list's events) or one per CSV row under a header row.
            .Produces<string>(StatusCodes.Status200OK, "application/x-ndjson", "text/csv");
    }

    private static async Task<Results<Ok<SecurityEventList>, ValidationProblem, ProblemHttpResult>> ListAsync(
        ClaimsPrincipal caller, SecurityEventHistory history, HttpContext context,
        [FromQuery] string[]? type, [FromQuery] DateTimeOffset? since, [FromQuery] DateTimeOffset? until, [FromQuery] int? limit, [FromQuery] string? cursor,
        CancellationToken cancellationToken)
    {
        if (caller.FindFirstValue(ClaimTypes.NameIdentifier) is not { } accountId)
        {
            return NoUser();
        }
        var errors = new Dictionary<string, string[]>();
        var filter = ReadFilter(type, since, until, errors);
        if (limit is < 1 or > SecurityEventHistory.MaxPageSize)
        {
            errors["limit"] = [$"limit must be between 1 and {SecurityEventHistory.MaxPageSize}."];
        }
        SecurityEventCursor? after = null;
        if (cursor is not null)
        {
            if (SecurityEventCursor.TryDecode(cursor, out var decoded))
            {
                after = decoded;
            }
            else
            {
                errors["cursor"] = ["The cursor is not one this API handed out; pass next_cursor from the previous page as it is."];
            }
        }
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors, detail: "The security events were not listed.");
        }
        var (rows, next) = await history.PageAsync(accountId, filter, limit ?? SecurityEventHistory.DefaultPageSize, after, cancellationToken);
        context.Response.Headers.CacheControl = "no-store";
        return TypedResults.Ok(new SecurityEventList(rows.ConvertAll(SecurityEventView.From), next?.Encode()));
    }

    private static Results<PushStreamHttpResult, ValidationProblem, ProblemHttpResult> Export(
        ClaimsPrincipal caller, SecurityEventHistory history, HttpContext context, IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json, TimeProvider time,
        [FromQuery] string? format, [FromQuery] string[]? type, [FromQuery] DateTimeOffset? since, [FromQuery] DateTimeOffset? until)
    {
        if (caller.FindFirstValue(ClaimTypes.NameIdentifier) is not { } accountId)
        {
            return NoUser();
        }
        var errors = new Dictionary<string, string[]>();
        var filter = ReadFilter(type, since, until, errors);
        if (!SecurityEventExport.TryParseFormat(format, out var exportFormat))
        {
            errors["format"] = [$"format must be one of: {SecurityEventExport.Formats}."];
        }
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors, detail: "The security events were not exported.");
        }
        context.Response.Headers.CacheControl = "no-store";
        var options = json.Value.SerializerOptions;
        return TypedResults.Stream(
            body => SecurityEventExport.WriteAsync(body, exportFormat, history.AllAsync(accountId, filter, context.RequestAborted), options, context.RequestAborted),
            SecurityEventExport.ContentType(exportFormat),
            SecurityEventExport.FileName(exportFormat, time.GetUtcNow()));
    }

    /// <summary>The type and time filters, with a message per field for what is wrong.</summary>
    internal static SecurityEventFilter ReadFilter(string[]? type, DateTimeOffset? since, DateTimeOffset? until, Dictionary<string, string[]> errors)
    {
        var types = new List<string>();
        foreach (var value in type ?? [])
        {
            foreach (var name in (value ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!SecurityEventTypes.All.Contains(name))
                {
                    errors["type"] = [$"Unknown event type {InputEcho.Quote(name)}. Known types: {string.Join(", ", SecurityEventTypes.All)}."];
                }
                else if (!types.Contains(name))
                {
                    types.Add(name);
                }
            }
        }
        if (since is not null && until is not null && since >= until)
        {
            errors["until"] = ["until must be later than since."];
        }
        return new SecurityEventFilter(types, since, until);
    }

    private static ProblemHttpResult NoUser() =>
        TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, detail: ExternalApiClaims.NoUserDetail);
}

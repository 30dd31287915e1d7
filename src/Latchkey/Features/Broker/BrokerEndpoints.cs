using System.Security.Claims;
using Latchkey.Common;
using Latchkey.Features.AgentApi;
using Latchkey.Features.Broker.Credentials;
using Latchkey.Features.Broker.Flows;
using Latchkey.Features.Broker.Providers;
using Latchkey.Features.ExternalApi;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Latchkey.Features.Broker;

public sealed record InitRequest(string? ProviderId, string? RedirectUri, string[]? Scopes, string? EndUserId = null, string[]? Tags = null);
public sealed record CallbackRequest(string? Code, string? State);
public sealed record StateRequest(string? State);
public sealed record StatusRequest(string? State, string? CredentialId);
public sealed record CredentialRequest(string? CredentialId);
public sealed record ProviderList(IReadOnlyList<ProviderView> Providers);
public sealed record CredentialList(IReadOnlyList<CredentialView> Credentials);
public sealed record CatalogList(IReadOnlyList<ProviderDefinition> Providers);

/// <summary>The credential broker's wire contract (<c>/mcp/oauth/*</c>, <c>/mcp/providers</c>, <c>/mcp/credentials</c>), for API keys.</summary>
internal static class BrokerEndpoints
{
    public static void MapBrokerEndpoints(this IEndpointRouteBuilder app)
    {
        var oauth = app.MapAgentApi("/mcp/oauth", "Credential broker");
        oauth.MapPost("/init", async (AgentBody<InitRequest> body, ClaimsPrincipal caller, FlowService flows, CancellationToken ct) =>
                (await flows.InitAsync(caller.UserId(), body.Value.ProviderId, body.Value.RedirectUri, body.Value.Scopes, ct, body.Value.EndUserId, body.Value.Tags)).ToOk())
            .WithSummary("Start an OAuth flow with a provider; returns the URL the user visits");
        oauth.MapPost("/callback", async (AgentBody<CallbackRequest> body, ClaimsPrincipal caller, FlowService flows, CancellationToken ct) =>
                (await flows.CallbackAsync(caller.UserId(), body.Value.Code, body.Value.State, ct)).ToOk())
            .WithSummary("Hand over the code and state the provider sent to your redirect URI");
        oauth.MapPost("/exchange-token", async (AgentBody<StateRequest> body, ClaimsPrincipal caller, FlowService flows, CancellationToken ct) =>
                (await flows.ExchangeAsync(caller.UserId(), body.Value.State, ct)).ToOk())
            .WithSummary("Exchange the code at the provider and store the credential");
        oauth.MapPost("/status", async (AgentBody<StatusRequest> body, ClaimsPrincipal caller, FlowService flows, CancellationToken ct) =>
                (await flows.StatusAsync(caller.UserId(), body.Value.State, body.Value.CredentialId, ct)).ToOk())
            .WithSummary("Where a flow or credential stands");
        oauth.MapPost("/refresh-token", async (AgentBody<CredentialRequest> body, ClaimsPrincipal caller, CredentialService credentials, CancellationToken ct) =>
                (await credentials.RefreshAsync(caller.UserId(), body.Value.CredentialId ?? "", ct))
                    .ToOk(credential => new RefreshResponse(credential.Id, credential.Status, credential.ExpiresAt)))
            .WithSummary("Refresh a credential's tokens at the provider now");
        oauth.MapPost("/cancel", async (AgentBody<StateRequest> body, ClaimsPrincipal caller, FlowService flows, CancellationToken ct) =>
                (await flows.CancelAsync(caller.UserId(), body.Value.State, ct)).ToOk())
            .WithSummary("Cancel a flow that has not finished");

        var providers = app.MapAgentApi("/mcp/providers", "Credential broker");
        providers.MapGet("/catalog", (ProviderCatalog catalog) => AgentResults.Ok(new CatalogList(catalog.All)))
            .WithSummary("The built-in provider catalog");
        providers.MapGet("/", async (ClaimsPrincipal caller, ProviderService service, CancellationToken ct) =>
                AgentResults.Ok(new ProviderList((await service.ListVisibleAsync(caller.UserId(), ct)).ConvertAll(ProviderService.View))))
            .WithSummary("Providers you can connect to");
        providers.MapPost("/", CreateProviderAsync)
            .WithSummary("Add a provider instance (catalog entry or custom OAuth 2.0 server) with your client id and secret");
        providers.MapGet("/{id}", async Task<Results<AgentOk<ProviderView>, AgentError>> (string id, ClaimsPrincipal caller, ProviderService service, CancellationToken ct) =>
            await service.FindVisibleAsync(caller.UserId(), id, ct) is { } found
                ? AgentResults.Ok(ProviderService.View(found))
                : AgentError.NotFound("provider", $"There is no provider {InputEcho.Quote(id)}."));
        providers.MapPatch("/{id}", UpdateProviderAsync);
        providers.MapDelete("/{id}", async Task<Results<NoContent, AgentError>> (string id, ClaimsPrincipal caller, ProviderService service, CancellationToken ct) =>
        {
            var found = await service.FindVisibleAsync(caller.UserId(), id, ct);
            if (found is null || found.OwnerId != caller.UserId())
            {
                return AgentError.NotFound("provider", $"You have no provider {InputEcho.Quote(id)} you may delete.");
            }
            await service.DeleteAsync(found, ct);
            return TypedResults.NoContent();
        });

        var sessions = app.MapAgentApi("/mcp/connect-sessions", "Credential broker");
        sessions.MapPost("/", async (AgentBody<Connect.ConnectSessionRequest> body, HttpContext context, ClaimsPrincipal caller, Connect.ConnectSessionService service, CancellationToken ct) =>
                (await service.CreateAsync(caller.UserId(), body.Value, ServerAddress.Base(context), ct)).ToCreated(created => created))
            .WithSummary("Create a short-lived, single-use session for one end user to connect one of the given providers on Latchkey's connect page");
        sessions.MapGet("/{id}", async (string id, ClaimsPrincipal caller, Connect.ConnectSessionService service, CancellationToken ct) =>
                (await service.FindAsync(caller.UserId(), id, ct)).ToOk())
            .WithSummary("Where a connect session stands (pending, opened, completed, failed, expired) and the credential it made");

        app.MapAgentApi(Proxy.CredentialProxy.Prefix, "Credential broker")
            .Map("/{credentialId}/{**path}", (string credentialId, HttpContext context, ClaimsPrincipal caller, Proxy.CredentialProxy proxy) =>
                proxy.HandleAsync(context, caller.UserId(), credentialId))
            .WithSummary("Call the provider's API with the credential injected (below its api_base_url; bodies streamed; one refresh on 401)");

        var credentials = app.MapAgentApi("/mcp/credentials", "Credential broker");
        credentials.MapGet("/", async Task<Results<AgentOk<CredentialList>, AgentError>> (ClaimsPrincipal caller, CredentialService service, CancellationToken ct,
                [FromQuery(Name = "end_user_id")] string? endUserId, [FromQuery] string? tag, [FromQuery(Name = "provider_id")] string? providerId, [FromQuery] string? status) =>
            {
                if (tag is not null && CredentialTags.Check([tag]) is { } badTag)
                {
                    return AgentError.BadRequest(badTag);
                }
                // PostgreSQL cannot compare text holding a NUL: refused here, as in bodies, rather than a 500 there.
                if (new[] { endUserId, providerId, status }.Any(v => v is not null && (v.Length > 300 || v.Any(char.IsControl))))
                {
                    return AgentError.BadRequest("end_user_id, provider_id and status must be single-line text of at most 300 characters.");
                }
                var filter = new CredentialFilter(endUserId, tag, providerId, status);
                return AgentResults.Ok(new CredentialList((await service.ListAsync(caller.UserId(), filter, ct)).ConvertAll(CredentialService.View)));
            })
            .WithSummary("Your stored credentials (metadata only), filtered by end_user_id, tag, provider_id or status");
        credentials.MapPost("/", async (AgentBody<CredentialCreateRequest> body, ClaimsPrincipal caller, CredentialService service, CancellationToken ct) =>
                (await service.CreateAsync(caller.UserId(), body.Value, ct)).ToCreated(CredentialService.View))
            .WithSummary("Store an API key, basic, bearer or header credential (tried with the provider's test request first), or fetch a client-credentials token");
        credentials.MapPost("/{id}/check", async (string id, ClaimsPrincipal caller, CredentialHealth health, CancellationToken ct) =>
                (await health.CheckAsync(caller.UserId(), id, ct)).ToOk(CredentialService.View))
            .WithSummary("Try the credential with its provider's test request now (a refusal marks it needs_reauth)");
        credentials.MapPatch("/{id}", async (string id, AgentBody<CredentialUpdateRequest> body, ClaimsPrincipal caller, CredentialService service, CancellationToken ct) =>
                (await service.UpdateAsync(caller.UserId(), id, body.Value, ct)).ToOk(CredentialService.View))
            .WithSummary("Change a credential's end_user_id, tags or label");
        credentials.MapGet("/{id}", async Task<Results<AgentOk<CredentialView>, AgentError>> (string id, ClaimsPrincipal caller, CredentialService service, CancellationToken ct) =>
            await service.FindAsync(caller.UserId(), id, ct) is { } found
                ? AgentResults.Ok(CredentialService.View(found))
                : NoCredential(id));
        credentials.MapPost("/{id}/access-token", async (string id, ClaimsPrincipal caller, CredentialService service, CancellationToken ct) =>
                (await service.AccessTokenAsync(caller.UserId(), id, ct)).ToOk())
            .WithSummary("A current access token for a tool (refreshed first when it expires soon; every read is audited)");
        credentials.MapDelete("/{id}", async Task<Results<NoContent, AgentError>> (string id, ClaimsPrincipal caller, CredentialService service, CancellationToken ct) =>
                await service.DeleteAsync(caller.UserId(), id, ct) ? TypedResults.NoContent() : NoCredential(id))
            .WithSummary("Revoke at the provider where possible, then remove");
    }

    /// <summary>
    /// <c>/external-api/v1/integrations</c>: OAuth apps (or API keys) acting for a user list, start and
    /// remove the user's third-party connections, each with its scope.
    /// </summary>
    public static void MapIntegrationsApi(this IEndpointRouteBuilder app)
    {
        var integrations = app.MapGroup("/external-api/v1/integrations").WithTags("External API")
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden);
        integrations.MapGet("/", async Task<Results<AgentOk<CredentialList>, ProblemHttpResult>> (ClaimsPrincipal caller, CredentialService service, CancellationToken ct) =>
                caller.FindFirstValue(ClaimTypes.NameIdentifier) is { } user
                    ? AgentResults.Ok(new CredentialList((await service.ListAsync(user, ct)).ConvertAll(CredentialService.View)))
                    : NoUser())
            .RequireScope("READ_INTEGRATIONS").WithSummary("The user's connected integrations (metadata only)");
        integrations.MapPost("/", async Task<Results<AgentOk<InitResponse>, AgentError, ProblemHttpResult>> (AgentBody<InitRequest> body, ClaimsPrincipal caller, FlowService flows, CancellationToken ct) =>
            {
                if (caller.FindFirstValue(ClaimTypes.NameIdentifier) is not { } user)
                {
                    return NoUser();
                }
                var (started, error) = await flows.InitAsync(user, body.Value.ProviderId, body.Value.RedirectUri, body.Value.Scopes, ct);
                return started is null ? error! : AgentResults.Ok(started);
            })
            .ReadsAgentBody()
            .RequireScope("MANAGE_INTEGRATIONS").WithSummary("Start connecting a provider for the user (as /mcp/oauth/init)");
        integrations.MapDelete("/{credentialId}", async Task<Results<NoContent, AgentError, ProblemHttpResult>> (string credentialId, ClaimsPrincipal caller, CredentialService service, CancellationToken ct) =>
                caller.FindFirstValue(ClaimTypes.NameIdentifier) is not { } user ? NoUser()
                : await service.DeleteAsync(user, credentialId, ct) ? TypedResults.NoContent()
                : AgentError.NotFound("credential", $"There is no integration {InputEcho.Quote(credentialId)}."))
            .RequireScope("DELETE_INTEGRATIONS").WithSummary("Remove one of the user's integrations (revoked at the provider where possible)");
    }

    private static async Task<Results<AgentCreated<ProviderView>, AgentError>> CreateProviderAsync(
        AgentBody<ProviderRequest> body, ClaimsPrincipal caller, ProviderService service, CancellationToken ct)
    {
        var (created, error) = await service.CreateAsync(caller.UserId(), body.Value, ct);
        return created is null ? AgentError.BadRequest(error!) : AgentResults.Created(ProviderService.View(created));
    }

    private static async Task<Results<AgentOk<ProviderView>, AgentError>> UpdateProviderAsync(
        string id, AgentBody<ProviderRequest> body, ClaimsPrincipal caller, ProviderService service, CancellationToken ct)
    {
        var found = await service.FindVisibleAsync(caller.UserId(), id, ct);
        if (found is null || found.OwnerId != caller.UserId())
        {
            return AgentError.NotFound("provider", $"You have no provider {InputEcho.Quote(id)} you may change.");
        }
        var error = await service.UpdateAsync(found, body.Value, ct);
        return error is null ? AgentResults.Ok(ProviderService.View(found)) : AgentError.BadRequest(error);
    }

    private static AgentError NoCredential(string id) => AgentError.NotFound("credential", $"You have no credential {InputEcho.Quote(id)}.");

    private static ProblemHttpResult NoUser() => TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, detail: ExternalApiClaims.NoUserDetail);
}

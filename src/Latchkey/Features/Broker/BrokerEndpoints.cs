using Latchkey.Storage;
using Latchkey.Common;
using System.Security.Claims;
using Latchkey.Features.Broker.Credentials;
using Latchkey.Features.Broker.Flows;
using Latchkey.Features.Broker.Providers;
using Latchkey.Features.Broker.Vault;
using Latchkey.Features.ExternalApi;
using Microsoft.AspNetCore.Authorization;

namespace Latchkey.Features.Broker;

public sealed record InitRequest(string? ProviderId, string? RedirectUri, string[]? Scopes);
public sealed record CallbackRequest(string? Code, string? State);
public sealed record StateRequest(string? State);
public sealed record StatusRequest(string? State, string? CredentialId);
public sealed record CredentialRequest(string? CredentialId);
public sealed record ProviderList(IReadOnlyList<ProviderView> Providers);
public sealed record CredentialList(IReadOnlyList<CredentialView> Credentials);
public sealed record CatalogList(IReadOnlyList<ProviderDefinition> Providers);

/// <summary>The credential broker's wire contract (<c>/mcp/oauth/*</c>, <c>/mcp/providers</c>, <c>/mcp/credentials</c>), for API keys.</summary>
public static class BrokerEndpoints
{
    public static WebApplicationBuilder AddBroker(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<BrokerOptions>().BindConfiguration(BrokerOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<ProviderCatalog>();
        builder.Services.AddSingleton<SecretVault>();
        builder.Services.AddAuditLog<CredentialAudit, CredentialAuditEvent>();
        builder.Services.AddSingleton<CredentialRefresher>();
        builder.Services.AddHostedService<ProactiveRefresh>();
        builder.Services.AddProviderHttpClient();
        builder.Services.AddScoped<ProviderClient>();
        builder.Services.AddScoped<ProviderService>();
        builder.Services.AddScoped<FlowService>();
        builder.Services.AddScoped<CredentialService>();
        builder.Services.AddSnapshotCache<Credential>(CacheScope.Credentials);
        return builder;
    }

    /// <summary>The broker's callers: an API key of the account (its scopes do not matter; the key is the account's).</summary>
    public static readonly AuthorizationPolicy ApiKeyOnly = new AuthorizationPolicyBuilder(ExternalApiAuthenticationHandler.SchemeName)
        .RequireAuthenticatedUser()
        .RequireClaim(ExternalApiClaims.CredentialType, ExternalApiClaims.ApiKey)
        .RequireClaim(ClaimTypes.NameIdentifier)
        .Build();

    public static WebApplication MapBroker(this WebApplication app)
    {
        var mcp = app.MapGroup("/mcp").WithTags("Credential broker").RequireAuthorization(ApiKeyOnly).WithMetadata(new BrokerErrorShape());

        var oauth = mcp.MapGroup("/oauth");
        oauth.MapPost("/init", async (HttpRequest request, ClaimsPrincipal caller, FlowService flows) =>
            await HandleAsync<InitRequest, InitResponse>(request, body => flows.InitAsync(caller.UserId(), body.ProviderId, body.RedirectUri, body.Scopes, request.HttpContext.RequestAborted)))
            .WithSummary("Start an OAuth flow with a provider; returns the URL the user visits").Accepts<InitRequest>("application/json").Produces<InitResponse>();
        oauth.MapPost("/callback", async (HttpRequest request, ClaimsPrincipal caller, FlowService flows) =>
            await HandleAsync<CallbackRequest, CallbackResponse>(request, body => flows.CallbackAsync(caller.UserId(), body.Code, body.State, request.HttpContext.RequestAborted)))
            .WithSummary("Hand over the code and state the provider sent to your redirect URI").Accepts<CallbackRequest>("application/json").Produces<CallbackResponse>();
        oauth.MapPost("/exchange-token", async (HttpRequest request, ClaimsPrincipal caller, FlowService flows) =>
            await HandleAsync<StateRequest, ExchangeResponse>(request, body => flows.ExchangeAsync(caller.UserId(), body.State, request.HttpContext.RequestAborted)))
            .WithSummary("Exchange the code at the provider and store the credential").Accepts<StateRequest>("application/json").Produces<ExchangeResponse>();
        oauth.MapPost("/status", async (HttpRequest request, ClaimsPrincipal caller, FlowService flows) =>
            await HandleAsync<StatusRequest, StatusResponse>(request, body => flows.StatusAsync(caller.UserId(), body.State, body.CredentialId, request.HttpContext.RequestAborted)))
            .WithSummary("Where a flow or credential stands").Accepts<StatusRequest>("application/json").Produces<StatusResponse>();
        oauth.MapPost("/refresh-token", async (HttpRequest request, ClaimsPrincipal caller, CredentialService credentials) =>
            await HandleAsync<CredentialRequest, RefreshResponse>(request, async body =>
            {
                var (credential, error) = await credentials.RefreshAsync(caller.UserId(), body.CredentialId ?? "", request.HttpContext.RequestAborted);
                return credential is null ? (null, error) : (new RefreshResponse(credential.Id, credential.Status, credential.ExpiresAt), null);
            }))
            .WithSummary("Refresh a credential's tokens at the provider now").Accepts<CredentialRequest>("application/json").Produces<RefreshResponse>();
        oauth.MapPost("/cancel", async (HttpRequest request, ClaimsPrincipal caller, FlowService flows) =>
            await HandleAsync<StateRequest, CancelResponse>(request, body => flows.CancelAsync(caller.UserId(), body.State, request.HttpContext.RequestAborted)))
            .WithSummary("Cancel a flow that has not finished").Accepts<StateRequest>("application/json").Produces<CancelResponse>();

        var providers = mcp.MapGroup("/providers");
        providers.MapGet("/catalog", (ProviderCatalog catalog) => Results.Json(new CatalogList(catalog.All), BrokerJson.Options))
            .WithSummary("The built-in provider catalog");
        providers.MapGet("/", async (ClaimsPrincipal caller, ProviderService service, CancellationToken ct) =>
            Results.Json(new ProviderList((await service.ListVisibleAsync(caller.UserId(), ct)).ConvertAll(ProviderService.View)), BrokerJson.Options))
            .WithSummary("Providers you can connect to");
        providers.MapPost("/", async (HttpRequest request, ClaimsPrincipal caller, ProviderService service) =>
            await HandleAsync<ProviderRequest, ProviderView>(request, async body =>
            {
                var (created, error) = await service.CreateAsync(caller.UserId(), body, request.HttpContext.RequestAborted);
                return created is null ? (null, BrokerError.BadRequest(error!)) : (ProviderService.View(created), null);
            }, StatusCodes.Status201Created))
            .WithSummary("Add a provider instance (catalog entry or custom OAuth 2.0 server) with your client id and secret").Accepts<ProviderRequest>("application/json");
        providers.MapGet("/{id}", async (string id, ClaimsPrincipal caller, ProviderService service, CancellationToken ct) =>
            await service.FindVisibleAsync(caller.UserId(), id, ct) is { } found
                ? Results.Json(ProviderService.View(found), BrokerJson.Options)
                : BrokerError.NotFound("provider", $"There is no provider {InputEcho.Quote(id)}.").ToResult());
        providers.MapPatch("/{id}", async (string id, HttpRequest request, ClaimsPrincipal caller, ProviderService service) =>
            await HandleAsync<ProviderRequest, ProviderView>(request, async body =>
            {
                var found = await service.FindVisibleAsync(caller.UserId(), id, request.HttpContext.RequestAborted);
                if (found is null || found.OwnerId != caller.UserId())
                {
                    return (null, BrokerError.NotFound("provider", $"You have no provider {InputEcho.Quote(id)} you may change."));
                }
                var error = await service.UpdateAsync(found, body, request.HttpContext.RequestAborted);
                return error is null ? (ProviderService.View(found), null) : (null, BrokerError.BadRequest(error));
            }));
        providers.MapDelete("/{id}", async (string id, ClaimsPrincipal caller, ProviderService service, CancellationToken ct) =>
        {
            var found = await service.FindVisibleAsync(caller.UserId(), id, ct);
            if (found is null || found.OwnerId != caller.UserId())
            {
                return BrokerError.NotFound("provider", $"You have no provider {InputEcho.Quote(id)} you may delete.").ToResult();
            }
            await service.DeleteAsync(found, ct);
            return Results.NoContent();
        });

        var credentials = mcp.MapGroup("/credentials");
        credentials.MapGet("/", async (ClaimsPrincipal caller, CredentialService service, CancellationToken ct) =>
            Results.Json(new CredentialList((await service.ListAsync(caller.UserId(), ct)).ConvertAll(CredentialService.View)), BrokerJson.Options))
            .WithSummary("Your stored credentials (metadata only)");
        credentials.MapGet("/{id}", async (string id, ClaimsPrincipal caller, CredentialService service, CancellationToken ct) =>
            await service.FindAsync(caller.UserId(), id, ct) is { } found
                ? Results.Json(CredentialService.View(found), BrokerJson.Options)
                : BrokerError.NotFound("credential", $"You have no credential {InputEcho.Quote(id)}.").ToResult());
        credentials.MapPost("/{id}/access-token", async (string id, ClaimsPrincipal caller, CredentialService service, CancellationToken ct) =>
        {
            var (token, error) = await service.AccessTokenAsync(caller.UserId(), id, ct);
            return token is null ? error!.ToResult() : Results.Json(token, BrokerJson.Options);
        }).WithSummary("A current access token for a tool (refreshed first when it expires soon; every read is audited)");
        credentials.MapDelete("/{id}", async (string id, ClaimsPrincipal caller, CredentialService service, CancellationToken ct) =>
            await service.DeleteAsync(caller.UserId(), id, ct)
                ? Results.NoContent()
                : BrokerError.NotFound("credential", $"You have no credential {InputEcho.Quote(id)}.").ToResult())
            .WithSummary("Revoke at the provider where possible, then remove");
        return app;
    }

    /// <summary>
    /// <c>/external-api/v1/integrations</c>: OAuth apps (or API keys) acting for a user list, start and
    /// remove the user's third-party connections, each with its scope.
    /// </summary>
    public static WebApplication MapIntegrationsApi(this WebApplication app)
    {
        var integrations = app.MapGroup("/external-api/v1/integrations").WithTags("External API")
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden);
        integrations.MapGet("/", async (ClaimsPrincipal caller, CredentialService service, CancellationToken ct) =>
                caller.FindFirstValue(ClaimTypes.NameIdentifier) is { } user
                    ? Results.Json(new CredentialList((await service.ListAsync(user, ct)).ConvertAll(CredentialService.View)), BrokerJson.Options)
                    : NoUser())
            .RequireScope("READ_INTEGRATIONS").WithSummary("The user's connected integrations (metadata only)");
        integrations.MapPost("/", async (HttpRequest request, ClaimsPrincipal caller, FlowService flows) =>
                caller.FindFirstValue(ClaimTypes.NameIdentifier) is { } user
                    ? await HandleAsync<InitRequest, InitResponse>(request, body => flows.InitAsync(user, body.ProviderId, body.RedirectUri, body.Scopes, request.HttpContext.RequestAborted))
                    : NoUser())
            .RequireScope("MANAGE_INTEGRATIONS").WithSummary("Start connecting a provider for the user (as /mcp/oauth/init)").Accepts<InitRequest>("application/json");
        integrations.MapDelete("/{credentialId}", async (string credentialId, ClaimsPrincipal caller, CredentialService service, CancellationToken ct) =>
                caller.FindFirstValue(ClaimTypes.NameIdentifier) is not { } user ? NoUser()
                : await service.DeleteAsync(user, credentialId, ct) ? Results.NoContent()
                : BrokerError.NotFound("credential", $"There is no integration {InputEcho.Quote(credentialId)}.").ToResult())
            .RequireScope("DELETE_INTEGRATIONS").WithSummary("Remove one of the user's integrations (revoked at the provider where possible)");
        return app;
    }

    private static IResult NoUser() => Results.Problem(statusCode: StatusCodes.Status403Forbidden, detail: ExternalApiClaims.NoUserDetail);

    internal static async Task<IResult> HandleAsync<TRequest, TResponse>(HttpRequest request, Func<TRequest, Task<(TResponse?, BrokerError?)>> handle, int successStatus = StatusCodes.Status200OK)
        where TRequest : class
    {
        var (body, invalid) = await BrokerJson.ReadAsync<TRequest>(request);
        if (body is null)
        {
            return invalid!.ToResult();
        }
        var (response, error) = await handle(body);
        return response is null ? error!.ToResult() : Results.Json(response, BrokerJson.Options, statusCode: successStatus);
    }
}

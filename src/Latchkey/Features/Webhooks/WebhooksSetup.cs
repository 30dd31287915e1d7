using System.Security.Claims;
using Latchkey.Common;
using Latchkey.Features.AgentApi;
using Latchkey.Features.Operations;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Webhooks;

/// <summary>Signed webhooks on credential, approval and connect-session events, through an outbox in the database.</summary>
public static class WebhooksSetup
{
    public static WebApplicationBuilder AddWebhooks(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<WebhookOptions>().BindConfiguration(WebhookOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddOutboundAddressGuard();
        builder.Services.AddHttpClient(WebhookDispatcher.ClientName)
            .ConfigurePrimaryHttpMessageHandler(services => services.GetRequiredService<OutboundAddressGuard>()
                .CreateHandler(services.GetRequiredService<IOptions<WebhookOptions>>().Value.AllowPrivateNetworks, "Webhooks:AllowPrivateNetworks"))
            .ConfigureHttpClient(client => client.DefaultRequestHeaders.UserAgent.ParseAdd("Latchkey-Webhooks/1.0"));
        builder.Services.AddSingleton<WebhookDispatcher>();
        builder.Services.AddHostedService(services => services.GetRequiredService<WebhookDispatcher>());
        builder.Services.AddSingleton<WebhookPublisher>();
        builder.Services.AddScoped<WebhookService>();
        builder.Services.AddCleanupTask<WebhookCleanup>();
        return builder;
    }

    /// <summary><c>/mcp/webhooks</c>: an account's endpoints, their delivery log, redelivery.</summary>
    public static WebApplication MapWebhooks(this WebApplication app)
    {
        var webhooks = app.MapAgentApi("/mcp/webhooks", "Webhooks");
        webhooks.MapPost("/", async (AgentBody<WebhookRequest> body, ClaimsPrincipal caller, WebhookService service, CancellationToken ct) =>
                (await service.CreateAsync(caller.UserId(), body.Value, ct)).ToCreated(created => created))
            .WithSummary("Add an endpoint; the answer holds its signing secret, shown this once");
        webhooks.MapGet("/", async (ClaimsPrincipal caller, WebhookService service, CancellationToken ct) =>
                AgentResults.Ok(new WebhookList((await service.ListAsync(caller.UserId(), ct)).ConvertAll(WebhookService.View))))
            .WithSummary("Your webhook endpoints");
        webhooks.MapPatch("/{id}", async (string id, AgentBody<WebhookRequest> body, ClaimsPrincipal caller, WebhookService service, CancellationToken ct) =>
                (await service.UpdateAsync(caller.UserId(), id, body.Value, ct)).ToOk(WebhookService.View))
            .WithSummary("Change an endpoint's url, events or enabled flag");
        webhooks.MapDelete("/{id}", async Task<Results<NoContent, AgentError>> (string id, ClaimsPrincipal caller, WebhookService service, CancellationToken ct) =>
                await service.DeleteAsync(caller.UserId(), id, ct) ? TypedResults.NoContent() : AgentError.NotFound("webhook", $"You have no webhook {InputEcho.Quote(id)}."))
            .WithSummary("Remove an endpoint and its delivery log");
        webhooks.MapGet("/{id}/deliveries", async (string id, [FromQuery] int? limit, ClaimsPrincipal caller, WebhookService service, CancellationToken ct) =>
                (await service.DeliveriesAsync(caller.UserId(), id, limit ?? 50, ct)).ToOk(list => new DeliveryList(list.ConvertAll(WebhookService.View))))
            .WithSummary("The endpoint's deliveries, newest first (limit: 1 to 200)");
        webhooks.MapPost("/{id}/deliveries/{deliveryId}/redeliver", async (string id, string deliveryId, ClaimsPrincipal caller, WebhookService service, CancellationToken ct) =>
                (await service.RedeliverAsync(caller.UserId(), id, deliveryId, ct)).ToOk(WebhookService.View))
            .WithSummary("Send a delivery again now (same id and body)");
        return app;
    }
}

internal sealed class WebhookCleanup(WebhookService webhooks) : ICleanupTask
{
    public async Task<IReadOnlyList<CleanupCount>> RunAsync(CancellationToken cancellationToken) =>
        [new("webhook deliveries", await webhooks.PruneAsync(cancellationToken))];
}

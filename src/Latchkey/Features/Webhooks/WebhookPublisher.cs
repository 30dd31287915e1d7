using System.Text.Json;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Features.Webhooks;

/// <summary>
/// Writes an event to the outbox: one delivery row per enabled endpoint of the account that wants
/// it, in the database before the publisher returns, so that a restart loses nothing; then wakes
/// this node's dispatcher. An account without endpoints costs one indexed read.
/// </summary>
public sealed partial class WebhookPublisher(IServiceScopeFactory scopes, TimeProvider time, WebhookDispatcher dispatcher, ILogger<WebhookPublisher> logger)
{
    public async Task PublishAsync(string accountId, string type, object data, CancellationToken cancellationToken = default)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<LatchkeyDbContext>();
            var endpoints = await db.WebhookEndpoints.AsNoTracking().Where(e => e.AccountId == accountId && e.Enabled).ToListAsync(cancellationToken);
            var now = time.GetUtcNow();
            foreach (var endpoint in endpoints.Where(e => e.Wants(type)))
            {
                var id = "msg_" + Guid.CreateVersion7().ToString("N");
                db.WebhookDeliveries.Add(new WebhookDelivery
                {
                    Id = id,
                    EndpointId = endpoint.Id,
                    AccountId = accountId,
                    EventType = type,
                    // The agent API's JSON: snake_case, instants in UTC with Z, as the rest of the API answers.
                    Payload = JsonSerializer.Serialize(new { id, type, timestamp = now, data }, AgentApi.AgentJson.Options),
                    CreatedAt = now,
                    NextAttemptAt = now,
                });
            }
            if (db.ChangeTracker.HasChanges())
            {
                await db.SaveChangesAsync(cancellationToken);
                dispatcher.Wake();
            }
        }
        catch (Exception exception) when (exception is DbUpdateException or InvalidOperationException || DatabaseUnavailable.Is(exception))
        {
            // The event itself (a refresh, a new credential) has happened; failing it now would not undo it.
            LogPublishFailed(logger, type, accountId, exception.GetType().Name);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "The {Type} webhook event of account {AccountId} could not be written ({Error})")]
    private static partial void LogPublishFailed(ILogger logger, string type, string accountId, string error);
}

using System.Linq.Expressions;
using System.Text;
using Latchkey.Features.Broker.Vault;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Webhooks;

/// <summary>
/// Sends the outbox's due deliveries, on every node. Each attempt is claimed with a conditional
/// update that sets a lease, so exactly one node makes it; a node that dies mid-attempt leaves the
/// lease to expire and another node tries again (receivers deduplicate on <c>webhook-id</c>, as
/// Standard Webhooks expects). A failed attempt is retried after 10 s, 50 s, about 4 min, 21 min,
/// 1.7 h, then every 6 h, until <c>Webhooks:MaxAttempts</c>.
/// </summary>
public sealed partial class WebhookDispatcher(IServiceScopeFactory scopes, IHttpClientFactory httpClients, IOptions<WebhookOptions> options, TimeProvider time,
    ILogger<WebhookDispatcher> logger) : BackgroundService
{
    public const string ClientName = "latchkey-webhooks";
    private const int BatchSize = 20;

    private readonly SemaphoreSlim _wake = new(0);

    /// <summary>Looks for due deliveries now rather than at the next poll.</summary>
    public void Wake()
    {
        if (_wake.CurrentCount == 0)
        {
            _wake.Release();
        }
    }

    /// <summary>The wait after the <paramref name="attempts"/>-th failed attempt.</summary>
    public static TimeSpan Backoff(int firstRetrySeconds, int attempts) =>
        TimeSpan.FromSeconds(Math.Min(firstRetrySeconds * Math.Pow(5, Math.Max(0, attempts - 1)), TimeSpan.FromHours(6).TotalSeconds));

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                while (await SendDueAsync(stoppingToken) == BatchSize)
                {
                    // A full batch: there may be more due at once.
                }
            }
            catch (Exception exception) when (exception is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                LogRunFailed(logger, exception.GetType().Name);
            }
            try
            {
                await _wake.WaitAsync(TimeSpan.FromSeconds(options.Value.PollSeconds), stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <returns>How many due deliveries were found.</returns>
    internal async Task<int> SendDueAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LatchkeyDbContext>();
        var now = time.GetUtcNow();
        var due = await db.WebhookDeliveries.AsNoTracking().Where(Due(now))
            .OrderBy(d => d.NextAttemptAt).Select(d => d.Id).Take(BatchSize).ToListAsync(cancellationToken);
        foreach (var id in due)
        {
            var leaseUntil = time.GetUtcNow().AddSeconds(options.Value.TimeoutSeconds * 3);
            // The same condition again, in the update: of several nodes that found it due, one claims it.
            var claimed = await db.WebhookDeliveries.Where(d => d.Id == id).Where(Due(now))
                .ExecuteUpdateAsync(s => s.SetProperty(d => d.LeaseUntil, leaseUntil).SetProperty(d => d.Attempts, d => d.Attempts + 1), cancellationToken);
            if (claimed == 1)
            {
                await AttemptAsync(db, scope.ServiceProvider.GetRequiredService<SecretVault>(), id, cancellationToken);
            }
        }
        return due.Count;
    }

    /// <summary>Pending, its time come, and no other attempt's lease running.</summary>
    private static Expression<Func<WebhookDelivery, bool>> Due(DateTimeOffset now) =>
        d => d.Status == DeliveryStatuses.Pending && d.NextAttemptAt <= now && (d.LeaseUntil == null || d.LeaseUntil < now);

    private async Task AttemptAsync(LatchkeyDbContext db, SecretVault vault, string id, CancellationToken cancellationToken)
    {
        var delivery = await db.WebhookDeliveries.Include(d => d.Endpoint).FirstAsync(d => d.Id == id, cancellationToken);
        var endpoint = delivery.Endpoint!;
        if (!endpoint.Enabled)
        {
            // Disabled after the event was queued: not sent, and said so in the log (redeliver once enabled).
            delivery.Status = DeliveryStatuses.Failed;
            delivery.LastError = "the endpoint is disabled";
            delivery.LeaseUntil = null;
            await db.SaveChangesAsync(CancellationToken.None);
            return;
        }
        var secret = await vault.DecryptAsync(endpoint.SecretCiphertext, WebhookService.SecretContext(endpoint.Id), cancellationToken);
        var timestamp = time.GetUtcNow().ToUnixTimeSeconds();
        int? status = null;
        string? error = null;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, endpoint.Url)
            {
                Content = new StringContent(delivery.Payload, Encoding.UTF8, "application/json"),
            };
            request.Headers.Add("webhook-id", delivery.Id);
            request.Headers.Add("webhook-timestamp", timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture));
            request.Headers.Add("webhook-signature", WebhookSignature.Sign(secret, delivery.Id, timestamp, delivery.Payload));
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(options.Value.TimeoutSeconds));
            // Only the status matters: the answer's body is never read (a receiver cannot make a node buffer it).
            using var response = await httpClients.CreateClient(ClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            status = (int)response.StatusCode;
            error = response.IsSuccessStatusCode ? null : $"answered {status}";
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            error = $"no answer within {options.Value.TimeoutSeconds} s";
        }
        catch (HttpRequestException exception)
        {
            error = exception.Message.Length > 500 ? exception.Message[..500] : exception.Message;
        }

        var now = time.GetUtcNow();
        delivery.LastAttemptAt = now;
        delivery.LastStatusCode = status;
        delivery.LastError = error;
        delivery.LeaseUntil = null;
        if (error is null)
        {
            delivery.Status = DeliveryStatuses.Delivered;
            delivery.DeliveredAt = now;
        }
        else if (delivery.Attempts >= options.Value.MaxAttempts)
        {
            delivery.Status = DeliveryStatuses.Failed;
            LogGaveUp(logger, delivery.Id, endpoint.Id, delivery.Attempts, error);
        }
        else
        {
            delivery.NextAttemptAt = now + Backoff(options.Value.FirstRetrySeconds, delivery.Attempts);
        }
        await db.SaveChangesAsync(CancellationToken.None);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Webhook delivery {DeliveryId} to {EndpointId} failed {Attempts} times and is given up ({Error})")]
    private static partial void LogGaveUp(ILogger logger, string deliveryId, string endpointId, int attempts, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "A webhook dispatch run failed ({Error}); it runs again at the next poll")]
    private static partial void LogRunFailed(ILogger logger, string error);
}

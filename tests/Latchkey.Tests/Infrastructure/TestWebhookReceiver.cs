using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Latchkey.Tests.Infrastructure;

/// <summary>One webhook request as the receiver saw it.</summary>
public sealed record ReceivedWebhook(string Body, IHeaderDictionary Headers)
{
    public string Id => Headers["webhook-id"].ToString();
}

/// <summary>A webhook receiver on loopback: records every request, and can fail the next ones with 500.</summary>
public sealed class TestWebhookReceiver : IAsyncDisposable
{
    private WebApplication _app = null!;

    public ConcurrentQueue<ReceivedWebhook> Received { get; } = new();

    private int _failNext;

    /// <summary>Requests still to be answered 500 (they are recorded all the same).</summary>
    public int FailNext
    {
        get => Volatile.Read(ref _failNext);
        set => Volatile.Write(ref _failNext, value);
    }

    public Uri Url { get; private set; } = null!;

    public static async Task<TestWebhookReceiver> StartAsync()
    {
        var receiver = new TestWebhookReceiver();
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.Run(async context =>
        {
            var body = await new StreamReader(context.Request.Body).ReadToEndAsync();
            receiver.Received.Enqueue(new ReceivedWebhook(body, new HeaderDictionary(context.Request.Headers.ToDictionary(h => h.Key, h => h.Value))));
            context.Response.StatusCode = Interlocked.Decrement(ref receiver._failNext) >= 0 ? 500 : 204;
        });
        await app.StartAsync();
        receiver._app = app;
        receiver.Url = new Uri(new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()), "/hooks");
        return receiver;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

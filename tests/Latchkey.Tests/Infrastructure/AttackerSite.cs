using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Latchkey.Tests.Infrastructure;

/// <summary>
/// Another site, on its own loopback origin, that serves one HTML page: what a page test needs to
/// play an attacker's page in the browser. A real server, because Chromium refuses a public (or
/// routed) page's requests into the local network for that alone, which would hide what is tested.
/// </summary>
public sealed class AttackerSite : IAsyncDisposable
{
    private readonly WebApplication _app;

    private AttackerSite(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    /// <summary>The page's address.</summary>
    public Uri Address { get; }

    public static async Task<AttackerSite> StartAsync(string html)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.MapGet("/", () => Results.Content(html, "text/html; charset=utf-8"));
        await app.StartAsync();
        var address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        return new AttackerSite(app, address);
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}

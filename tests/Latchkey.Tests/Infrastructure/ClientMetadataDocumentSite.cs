using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Latchkey.Tests.Infrastructure;

/// <summary>
/// A client's website on loopback, over https as the draft demands, serving client metadata
/// documents that tests put there and counting how often each is fetched. Its certificate is
/// made once per test run; test servers trust it for exactly these fetches
/// (<see cref="LatchkeyServerFixture.Configure"/>), as a real server trusts a public CA.
/// </summary>
public sealed class ClientMetadataDocumentSite : IAsyncDisposable
{
    private static readonly Lazy<X509Certificate2> s_certificate = new(CreateCertificate);

    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, Response> _responses = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _hits = new(StringComparer.Ordinal);

    private ClientMetadataDocumentSite(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    public static X509Certificate2 Certificate => s_certificate.Value;

    /// <summary><c>https://127.0.0.1:port/</c></summary>
    public Uri Address { get; }

    private sealed record Response(int Status, string Body, string ContentType, IReadOnlyDictionary<string, string> Headers);

    public static async Task<ClientMetadataDocumentSite> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(Certificate)));
        builder.Logging.ClearProviders();
        var app = builder.Build();
        ClientMetadataDocumentSite? site = null;
        app.Run(async context =>
        {
            var path = context.Request.Path.Value ?? "/";
            site!._hits.AddOrUpdate(path, 1, (_, count) => count + 1);
            if (!site._responses.TryGetValue(path, out var response))
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return;
            }
            context.Response.StatusCode = response.Status;
            foreach (var (name, value) in response.Headers)
            {
                context.Response.Headers[name] = value;
            }
            context.Response.ContentType = response.ContentType;
            await context.Response.WriteAsync(response.Body);
        });
        await app.StartAsync();
        var address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        site = new ClientMetadataDocumentSite(app, new Uri($"https://127.0.0.1:{address.Port}/"));
        return site;
    }

    /// <summary>The URL of a document on this site, which is also its client id.</summary>
    public string Url(string path) => new Uri(Address, path).AbsoluteUri;

    /// <summary>Serves <paramref name="document"/> as JSON at <paramref name="path"/>, with optional response headers.</summary>
    public void Serve(string path, object document, IReadOnlyDictionary<string, string>? headers = null) =>
        ServeRaw(path, StatusCodes.Status200OK, JsonSerializer.Serialize(document), headers);

    public void ServeRaw(string path, int status, string body, IReadOnlyDictionary<string, string>? headers = null, string contentType = "application/json") =>
        _responses[path] = new Response(status, body, contentType, headers ?? new Dictionary<string, string>());

    /// <summary>How many times the document at <paramref name="path"/> was asked for.</summary>
    public int Hits(string path) => _hits.GetValueOrDefault(path);

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    private static X509Certificate2 CreateCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        // Through PKCS #12 so that the private key is one TLS can use on every platform.
        return X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pkcs12), null);
    }
}

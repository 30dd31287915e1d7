using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Broker;

/// <summary>
/// The SSRF guard for requests Latchkey makes to providers: https only, and no private, loopback
/// or link-local destination unless <c>Broker:AllowPrivateNetworks</c> is on. Checked when a
/// provider is created and again at connect time (a host may resolve differently later).
/// </summary>
public static class OutboundAddressGuard
{
    public static bool IsPrivate(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        if (IPAddress.IsLoopback(address) || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any))
        {
            return true;
        }
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            var b = address.GetAddressBytes();
            return b[0] == 10 || b[0] == 0 || (b[0] == 172 && b[1] >= 16 && b[1] <= 31) || (b[0] == 192 && b[1] == 168) ||
                   (b[0] == 169 && b[1] == 254) || (b[0] == 100 && b[1] >= 64 && b[1] <= 127) || b[0] >= 224;
        }
        return address.IsIPv6LinkLocal || address.IsIPv6SiteLocal || address.IsIPv6UniqueLocal || address.IsIPv6Multicast;
    }

    /// <summary>Why Latchkey may not call this URL, or null when it may.</summary>
    public static async Task<string?> CheckAsync(string url, bool allowPrivateNetworks, CancellationToken cancellationToken)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http") || !string.IsNullOrEmpty(uri.UserInfo))
        {
            return $"'{url}' is not an absolute http(s) URL.";
        }
        if (uri.Scheme == "http" && !allowPrivateNetworks)
        {
            return $"'{url}' must use https.";
        }
        if (allowPrivateNetworks)
        {
            return null;
        }
        try
        {
            var addresses = await Dns.GetHostAddressesAsync(uri.DnsSafeHost, cancellationToken);
            return addresses.Length == 0 || addresses.Any(IsPrivate)
                ? $"'{uri.Host}' resolves to a private or loopback address, which Latchkey does not call."
                : null;
        }
        catch (SocketException)
        {
            return $"'{uri.Host}' cannot be resolved.";
        }
    }

    /// <summary>Connects only to addresses the guard allows, whatever the name resolved to when the provider was created.</summary>
    internal static SocketsHttpHandler CreateHandler(bool allowPrivateNetworks) => new()
    {
        AllowAutoRedirect = false,
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        ConnectCallback = async (context, cancellationToken) =>
        {
            var addresses = await Dns.GetHostAddressesAsync(context.DnsEndPoint.Host, cancellationToken);
            if (!allowPrivateNetworks && addresses.Any(IsPrivate))
            {
                throw new HttpRequestException($"Refused to connect to {context.DnsEndPoint.Host}: it resolves to a private or loopback address.");
            }
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(addresses, context.DnsEndPoint.Port, cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    };
}

public static class ProviderHttpSetup
{
    public const string ClientName = "latchkey-providers";

    public static IServiceCollection AddProviderHttpClient(this IServiceCollection services)
    {
        services.AddHttpClient(ClientName)
            .ConfigurePrimaryHttpMessageHandler(provider =>
                OutboundAddressGuard.CreateHandler(provider.GetRequiredService<IOptions<BrokerOptions>>().Value.AllowPrivateNetworks))
            .ConfigureHttpClient((provider, client) =>
            {
                client.Timeout = TimeSpan.FromSeconds(provider.GetRequiredService<IOptions<BrokerOptions>>().Value.ProviderTimeoutSeconds);
                client.DefaultRequestHeaders.UserAgent.ParseAdd("Latchkey/1.0");
            });
        return services;
    }
}

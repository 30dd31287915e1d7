using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Latchkey.Common;

/// <summary>
/// The SSRF guard for the requests Latchkey makes on a caller's behalf (broker providers, MCP
/// upstreams): https only, no user info, and no destination in a special-purpose block of the IANA
/// IPv4 and IPv6 registries (private, loopback, link-local, documentation, translation prefixes that
/// wrap such an address, ...), unless the feature's <c>AllowPrivateNetworks</c> is on. A URL is
/// checked when it is registered, and every connection is checked again as it is made, against the
/// addresses it is then made to (a name may resolve differently later: DNS rebinding).
/// </summary>
public sealed class OutboundAddressGuard(HostAddressResolver resolver)
{
    /// <summary>Where an address of a block is itself an IPv4 address that decides.</summary>
    private enum Embedded
    {
        None,
        /// <summary>The last 32 bits (IPv4-mapped, NAT64 well-known prefix).</summary>
        LowBits,
        /// <summary>Bits 16 to 47 (6to4, RFC 3056 §2).</summary>
        SixToFour,
    }

    private sealed record Block(IPNetwork Network, string Name, string Rfc, Embedded Wraps)
    {
        public override string ToString() => $"{Network} ({Name}, {Rfc})";
    }

    private static readonly Block Ipv4Mapped = new(IPNetwork.Parse("::ffff:0:0/96"), "IPv4-mapped Address", "RFC 4291", Embedded.LowBits);

    /// <summary>
    /// Every block of the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and
    /// successors), with multicast, limited broadcast and the deprecated IPv6 formats beside them.
    /// All are refused, except the address-wrapping blocks marked with what they wrap: their
    /// addresses are as good as the IPv4 address inside. Blocks the registries call globally
    /// reachable are refused too (AS112, AMT, the PCP/TURN/DNS-SD anycast addresses, ORCHIDv2,
    /// DETs): anycast is answered by the nearest instance, which may be a box on Latchkey's own
    /// network (PCP and TURN anycast are answered by the local gateway by design), ORCHIDs and DETs
    /// are identifiers rather than locators, and no provider or MCP server lives in any of them.
    /// </summary>
    private static readonly Block[] SpecialPurpose =
    [
        .. Blocks(
        [
            ("0.0.0.0/8", "This network", "RFC 791"),
            ("0.0.0.0/32", "This host on this network", "RFC 1122"),
            ("10.0.0.0/8", "Private-Use", "RFC 1918"),
            ("100.64.0.0/10", "Shared Address Space", "RFC 6598"),
            ("127.0.0.0/8", "Loopback", "RFC 1122"),
            ("169.254.0.0/16", "Link Local", "RFC 3927"),
            ("172.16.0.0/12", "Private-Use", "RFC 1918"),
            ("192.0.0.0/24", "IETF Protocol Assignments", "RFC 6890"),
            ("192.0.0.0/29", "IPv4 Service Continuity Prefix", "RFC 7335"),
            ("192.0.0.8/32", "IPv4 dummy address", "RFC 7600"),
            ("192.0.0.9/32", "Port Control Protocol Anycast", "RFC 7723"),
            ("192.0.0.10/32", "Traversal Using Relays around NAT Anycast", "RFC 8155"),
            ("192.0.0.170/31", "NAT64/DNS64 Discovery", "RFC 8880"),
            ("192.0.2.0/24", "Documentation (TEST-NET-1)", "RFC 5737"),
            ("192.31.196.0/24", "AS112-v4", "RFC 7535"),
            ("192.52.193.0/24", "AMT", "RFC 7450"),
            ("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", "RFC 7526"),
            ("192.168.0.0/16", "Private-Use", "RFC 1918"),
            ("192.175.48.0/24", "Direct Delegation AS112 Service", "RFC 7534"),
            ("198.18.0.0/15", "Benchmarking", "RFC 2544"),
            ("198.51.100.0/24", "Documentation (TEST-NET-2)", "RFC 5737"),
            ("203.0.113.0/24", "Documentation (TEST-NET-3)", "RFC 5737"),
            ("224.0.0.0/4", "Multicast", "RFC 5771"),
            ("240.0.0.0/4", "Reserved", "RFC 1112"),
            ("255.255.255.255/32", "Limited Broadcast", "RFC 919"),

            ("::/128", "Unspecified Address", "RFC 4291"),
            ("::1/128", "Loopback Address", "RFC 4291"),
            // Deprecated formats no router forwards; refused whole rather than judged by the IPv4 inside.
            ("::/96", "IPv4-compatible Address (deprecated)", "RFC 4291"),
            ("::ffff:0:0:0/96", "IPv4-translated Address (obsolete)", "RFC 2765"),
            ("64:ff9b:1::/48", "IPv4-IPv6 Translation (local use)", "RFC 8215"),
            ("100::/64", "Discard-Only Address Block", "RFC 6666"),
            ("100:0:0:1::/64", "Dummy IPv6 Prefix", "RFC 9780"),
            ("2001::/23", "IETF Protocol Assignments", "RFC 2928"),
            ("2001::/32", "TEREDO", "RFC 4380"),
            ("2001:1::1/128", "Port Control Protocol Anycast", "RFC 7723"),
            ("2001:1::2/128", "Traversal Using Relays around NAT Anycast", "RFC 8155"),
            ("2001:1::3/128", "DNS-SD Service Registration Protocol Anycast", "RFC 9665"),
            ("2001:2::/48", "Benchmarking", "RFC 5180"),
            ("2001:3::/32", "AMT", "RFC 7450"),
            ("2001:4:112::/48", "AS112-v6", "RFC 7535"),
            ("2001:10::/28", "Deprecated (previously ORCHID)", "RFC 4843"),
            ("2001:20::/28", "ORCHIDv2", "RFC 7343"),
            ("2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs)", "RFC 9374"),
            ("2001:db8::/32", "Documentation", "RFC 3849"),
            ("2620:4f:8000::/48", "Direct Delegation AS112 Service", "RFC 7534"),
            ("3fff::/20", "Documentation", "RFC 9637"),
            ("5f00::/16", "Segment Routing (SRv6) SIDs", "RFC 9602"),
            ("fc00::/7", "Unique-Local", "RFC 4193"),
            ("fe80::/10", "Link-Local Unicast", "RFC 4291"),
            ("fec0::/10", "Site-Local (deprecated)", "RFC 3879"),
            ("ff00::/8", "Multicast", "RFC 4291"),
        ], Embedded.None),
        Ipv4Mapped,
        new(IPNetwork.Parse("64:ff9b::/96"), "IPv4-IPv6 Translation (NAT64)", "RFC 6052", Embedded.LowBits),
        new(IPNetwork.Parse("2002::/16"), "6to4", "RFC 3056", Embedded.SixToFour),
    ];

    /// <summary>IANA allocates IPv6 unicast from 2000::/3 only; the rest is reserved by the IETF (RFC 4291 §2.4).</summary>
    private static readonly IPNetwork GlobalUnicast = IPNetwork.Parse("2000::/3");

    private static IEnumerable<Block> Blocks((string Cidr, string Name, string Rfc)[] rows, Embedded wraps) =>
        rows.Select(row => new Block(IPNetwork.Parse(row.Cidr), row.Name, row.Rfc, wraps));

    /// <summary>
    /// Why Latchkey does not connect to this address, worded to follow "is" ("in 10.0.0.0/8
    /// (Private-Use, RFC 1918)", and what wraps it), or null when it may.
    /// </summary>
    public static string? Refusal(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            // IPNetwork.Contains takes an IPv4-mapped address for the IPv4 address inside (never in an IPv6 block): say what wraps it.
            return Refusal(address.MapToIPv4()) is { } wrapped ? $"{wrapped}, wrapped in {Ipv4Mapped}" : null;
        }
        // The most specific block names the address best (::1 is loopback before it is IPv4-compatible).
        Block? found = null;
        foreach (var block in SpecialPurpose)
        {
            if (block.Network.Contains(address) && (found is null || block.Network.PrefixLength > found.Network.PrefixLength))
            {
                found = block;
            }
        }
        if (found is null)
        {
            return address.AddressFamily == AddressFamily.InterNetworkV6 && !GlobalUnicast.Contains(address)
                ? $"outside {GlobalUnicast}, the only IPv6 unicast space IANA allocates (RFC 4291)"
                : null;
        }
        if (found.Wraps == Embedded.None)
        {
            return $"in {found}";
        }
        var bytes = address.GetAddressBytes();
        var inner = new IPAddress(found.Wraps == Embedded.LowBits ? bytes.AsSpan(12, 4) : bytes.AsSpan(2, 4));
        return Refusal(inner) is { } refusal ? $"{refusal}, wrapped in {found}" : null;
    }

    /// <summary>Why Latchkey may not call this URL, or null when it may.</summary>
    public async Task<string?> CheckAsync(string url, bool allowPrivateNetworks, CancellationToken cancellationToken)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http") || !string.IsNullOrEmpty(uri.UserInfo))
        {
            return $"{InputEcho.Quote(url)} is not an absolute http(s) URL.";
        }
        if (uri.Scheme == "http" && !allowPrivateNetworks)
        {
            return $"{InputEcho.Quote(url)} must use https.";
        }
        if (allowPrivateNetworks)
        {
            return null;
        }
        // IdnHost is what HttpClient connects to (a host of full-width dots is plain ASCII there).
        var host = uri.IdnHost;
        if (IPAddress.TryParse(host, out var literal))
        {
            return Refusal(literal) is { } refusal ? $"{InputEcho.Quote(uri.Host)} is {refusal}, which Latchkey does not call." : null;
        }
        var addresses = await TryResolveAsync(host, cancellationToken);
        if (addresses is not { Length: > 0 })
        {
            return $"{InputEcho.Quote(uri.Host)} cannot be resolved.";
        }
        // The address is not named: that would tell a caller what internal names resolve to.
        return Array.Exists(addresses, address => Refusal(address) is not null)
            ? $"{InputEcho.Quote(uri.Host)} resolves to a private, loopback or other special-purpose address, which Latchkey does not call."
            : null;
    }

    /// <summary>
    /// A handler whose every connection resolves its host once, is refused when any of the
    /// addresses is special-purpose, and is made to exactly those addresses: what was checked is
    /// what is connected to. Redirects are not followed. A refusal names <paramref name="setting"/>,
    /// the switch that lifts the guard, when given.
    /// </summary>
    public SocketsHttpHandler CreateHandler(bool allowPrivateNetworks, string? setting = null) => new()
    {
        AllowAutoRedirect = false,
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        ConnectCallback = async (context, cancellationToken) =>
        {
            var host = context.DnsEndPoint.Host;
            var addresses = IPAddress.TryParse(host, out var literal) ? new[] { literal } : await TryResolveAsync(host, cancellationToken);
            if (addresses is not { Length: > 0 })
            {
                throw new HttpRequestException(HttpRequestError.NameResolutionError, $"Refused to connect to {InputEcho.Quote(host)}: it cannot be resolved.");
            }
            if (!allowPrivateNetworks && Array.Exists(addresses, address => Refusal(address) is not null))
            {
                throw new HttpRequestException(HttpRequestError.ConnectionError,
                    $"Refused to connect to {InputEcho.Quote(host)}: it resolves to a private, loopback or other special-purpose address." +
                    (setting is null ? "" : $" ({setting} permits private and loopback addresses.)"));
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

    private async Task<IPAddress[]?> TryResolveAsync(string host, CancellationToken cancellationToken)
    {
        try
        {
            return await resolver.ResolveAsync(host, cancellationToken);
        }
        catch (Exception exception) when (exception is SocketException or ArgumentException)
        {
            return null;
        }
    }
}

public static class OutboundAddressGuardSetup
{
    /// <summary>The guard and the system resolver, once, for every feature that calls out.</summary>
    public static IServiceCollection AddOutboundAddressGuard(this IServiceCollection services)
    {
        services.TryAddSingleton(HostAddressResolver.System);
        services.TryAddSingleton<OutboundAddressGuard>();
        return services;
    }
}

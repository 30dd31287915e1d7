using System.Net;

namespace Latchkey.Common;

/// <summary>The address a request came from, as people read it: an IPv4 client seen through a dual-stack socket as IPv4.</summary>
public static class ClientAddress
{
    public static IPAddress? Of(HttpContext? context) =>
        context?.Connection.RemoteIpAddress is { IsIPv4MappedToIPv6: true } mapped ? mapped.MapToIPv4() : context?.Connection.RemoteIpAddress;
}

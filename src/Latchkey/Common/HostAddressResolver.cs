using System.Net;

namespace Latchkey.Common;

/// <summary>
/// Turns a host name into the addresses Latchkey may connect to, for <see cref="OutboundAddressGuard"/>.
/// The system resolver by default; a test registers its own to answer as a rebinding DNS server would.
/// </summary>
public sealed class HostAddressResolver(Func<string, CancellationToken, Task<IPAddress[]>> resolve)
{
    public static readonly HostAddressResolver System = new(Dns.GetHostAddressesAsync);

    public Task<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken) => resolve(host, cancellationToken);
}

using System.ComponentModel.DataAnnotations;

namespace Latchkey.Features.Operations;

/// <summary>HTTP server limits. Bound from the <c>Server</c> section.</summary>
public sealed class ServerOptions
{
    public const string SectionName = "Server";

    /// <summary>Largest request body accepted, in bytes; larger requests get 413.</summary>
    [Range(1024, 100 * 1024 * 1024)]
    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// Honour X-Forwarded-Proto/-Host/-For from a reverse proxy that terminates TLS. Turn on only
    /// when every request comes through such a proxy, which must overwrite these headers.
    /// </summary>
    public bool TrustForwardedHeaders { get; set; }

    /// <summary>The address people use to reach this server, used in printed links. Defaults to the first listening address.</summary>
    [Url]
    public string? PublicUrl { get; set; }
}

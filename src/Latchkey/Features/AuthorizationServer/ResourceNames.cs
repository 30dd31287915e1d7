namespace Latchkey.Features.AuthorizationServer;

/// <summary>
/// Names a resource (RFC 8707) on the consent page in words the user knows, for resources another
/// feature hosts (an MCP gateway URL: the server's name). Null: the page shows the URL itself.
/// </summary>
public interface IResourceNames
{
    ValueTask<string?> DescribeAsync(HttpContext context, string userId, string resource, CancellationToken cancellationToken);
}

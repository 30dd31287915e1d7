using Latchkey.Common;
using Latchkey.Features.AuthorizationServer;

namespace Latchkey.Features.Mcp;

/// <summary>On the consent page, a gateway URL reads as the MCP server it leads to.</summary>
internal sealed class McpResourceNames(McpServerService servers) : IResourceNames
{
    public async ValueTask<string?> DescribeAsync(HttpContext context, string userId, string resource, CancellationToken cancellationToken)
    {
        var prefix = ServerAddress.Base(context) + "/mcp/servers/";
        if (!resource.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) || !resource.EndsWith(McpServerService.GatewayPathSuffix, StringComparison.Ordinal))
        {
            return null;
        }
        var id = resource[prefix.Length..^McpServerService.GatewayPathSuffix.Length];
        var route = id.Contains('/', StringComparison.Ordinal) ? null : await servers.RouteAsync(id, cancellationToken);
        // Another account's server reads like a missing one: its existence is not the user's to learn.
        return route is not null && route.OwnerId == userId
            ? $"your MCP server “{route.Name}”, through Latchkey's gateway"
            : $"an MCP gateway that is not yours ({resource}), which this token will not open";
    }
}

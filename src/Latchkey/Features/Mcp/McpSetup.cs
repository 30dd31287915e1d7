using Latchkey.Cluster;
using Latchkey.Common;
using Latchkey.Features.AuthorizationServer;
using Latchkey.Features.Mcp.Gateway;
using Latchkey.Features.Operations;
using Latchkey.Storage;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Mcp;

/// <summary>
/// MCP servers and tool-to-credential mappings (<c>/mcp/servers</c>, agent API), the gateway
/// (<c>/mcp/servers/{id}/mcp</c>, API key or access token for the gateway), and its protected
/// resource metadata (RFC 9728).
/// </summary>
public static class McpSetup
{
    public static WebApplicationBuilder AddMcp(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<McpOptions>().BindConfiguration(McpOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddScoped<McpServerService>();
        builder.Services.AddScoped<Policies.ToolPolicyService>();
        builder.Services.AddScoped<McpGateway>();
        builder.Services.AddScoped<GatewayPolicy>();
        builder.Services.AddScoped<Approvals.ToolCallApprovals>();
        builder.Services.AddCleanupTask<Approvals.ApprovalCleanup>();
        builder.Services.AddScoped<Virtual.VirtualServerService>();
        builder.Services.AddScoped<Virtual.VirtualGateway>();
        builder.Services.AddScoped<Virtual.UpstreamSessions>();
        builder.Services.AddMemoryCache();
        builder.Services.AddSnapshotCache<Virtual.VirtualRoute>(CacheScope.McpServers);
        builder.Services.AddCacheInvalidation<Virtual.McpVirtualServer>(CacheScope.McpServers, onInsert: true);
        builder.Services.AddCacheInvalidation<Virtual.McpVirtualMember>(CacheScope.McpServers, onInsert: true);
        builder.Services.AddCacheInvalidation<Policies.McpToolPolicy>(CacheScope.McpServers);
        builder.Services.AddScoped<UpstreamTools>();
        builder.Services.AddScoped<IResourceNames, McpResourceNames>();
        builder.Services.AddAuditLog<ToolCallAudit, McpToolCall>();
        builder.Services.AddSnapshotCache<GatewayRoute>(CacheScope.McpServers);
        builder.Services.AddCacheInvalidation<McpServer>(CacheScope.McpServers);
        builder.Services.AddCacheInvalidation<McpToolMapping>(CacheScope.McpServers);
        builder.Services.AddSummarizedTable<McpServer>("MCP servers");
        builder.Services.AddOutboundAddressGuard();
        builder.Services.AddHttpClient(McpGateway.HttpClientName)
            .ConfigurePrimaryHttpMessageHandler(services => services.GetRequiredService<OutboundAddressGuard>()
                .CreateHandler(services.GetRequiredService<IOptions<McpOptions>>().Value.AllowPrivateNetworks, "Mcp:AllowPrivateNetworks"))
            // Streams stay open as long as the agent keeps them; the gateway times the wait for headers itself.
            .ConfigureHttpClient(client => client.Timeout = Timeout.InfiniteTimeSpan);
        builder.Services.AddHttpClient(Approvals.ToolCallApprovals.WebhookClientName)
            .ConfigurePrimaryHttpMessageHandler(services => services.GetRequiredService<OutboundAddressGuard>()
                .CreateHandler(services.GetRequiredService<IOptions<McpOptions>>().Value.AllowPrivateNetworks, "Mcp:AllowPrivateNetworks"));
        return builder;
    }

    public static WebApplication MapMcp(this WebApplication app)
    {
        app.MapMcpEndpoints();
        return app;
    }
}

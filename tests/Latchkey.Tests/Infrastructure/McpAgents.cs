using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Latchkey.Tests.Infrastructure;

/// <summary>Agents as the tests play them: the official MCP SDK's client, on a gateway URL, with an API key.</summary>
public static class McpAgents
{
    /// <summary>A connected SDK client; <paramref name="protocolVersion"/> picks a revision (2025-11-25 and before keep sessions).</summary>
    public static async Task<McpClient> ConnectAsync(Uri gateway, string apiKey, string? protocolVersion = null) =>
        await McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = gateway,
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = new Dictionary<string, string> { ["X-API-Key"] = apiKey },
        }), new McpClientOptions { ProtocolVersion = protocolVersion });

    /// <summary>A tool result's text, its text blocks joined by new lines.</summary>
    public static string Text(CallToolResult result) => string.Join("\n", result.Content.OfType<TextContentBlock>().Select(c => c.Text));
}

using Latchkey.Features.AgentApi;
using Latchkey.Features.Broker.Credentials;
using Latchkey.Features.Mcp.Gateway;
using Microsoft.Extensions.Options;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Latchkey.Features.Mcp;

/// <summary>One upstream tool and the credential a call to it carries (mapped to it, or the server default).</summary>
public sealed record ToolView(string Name, string? Title, string? Description, CredentialBindingView? Credential, string? CredentialSource);

public sealed record ToolList(string ServerId, IReadOnlyList<ToolView> Tools, IReadOnlyList<ToolMappingView> MappingsWithoutTool);

/// <summary>Lists an upstream's tools with the SDK's MCP client, presenting the server's default credential as the gateway would.</summary>
public sealed class UpstreamTools(CredentialService credentials, IHttpClientFactory httpClients, IOptions<McpOptions> options, ILoggerFactory loggers)
{
    public async Task<Outcome<ToolList>> ListAsync(McpServer server, string baseUrl, CancellationToken cancellationToken)
    {
        var headers = new Dictionary<string, string>();
        if (server.DefaultCredentialId is { } credentialId)
        {
            var (token, error) = await credentials.AccessTokenAsync(server.OwnerId, credentialId, cancellationToken);
            if (token is null)
            {
                return error!.Status == StatusCodes.Status404NotFound
                    ? AgentError.Conflict("credential_not_found", $"The server's default credential '{credentialId}' no longer exists; set another with PATCH.")
                    : new AgentError(StatusCodes.Status409Conflict, error.Error, $"The server's default credential cannot be used: {error.Message} Reconnect it at {McpServerService.ReconnectUrl(baseUrl, credentialId)}.");
            }
            foreach (var (name, value) in server.DefaultBinding!.Headers(token))
            {
                headers[name] = value;
            }
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(options.Value.ToolListTimeoutSeconds));
        IList<McpClientTool> tools;
        try
        {
            var transport = new HttpClientTransport(new HttpClientTransportOptions
            {
                Endpoint = new Uri(server.UpstreamUrl),
                TransportMode = HttpTransportMode.StreamableHttp,
                AdditionalHeaders = headers,
                Name = server.Name,
            }, httpClients.CreateClient(McpGateway.HttpClientName), loggers, ownsHttpClient: false);
            await using var client = await McpClient.CreateAsync(transport, new McpClientOptions
            {
                ClientInfo = new Implementation { Name = "Latchkey", Version = typeof(UpstreamTools).Assembly.GetName().Version?.ToString() ?? "1.0" },
            }, loggers, timeout.Token);
            tools = await client.ListToolsAsync(cancellationToken: timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new AgentError(StatusCodes.Status504GatewayTimeout, "upstream_timeout",
                $"The upstream MCP server did not list its tools within {options.Value.ToolListTimeoutSeconds} s.");
        }
        catch (Exception exception) when (exception is HttpRequestException or McpException or InvalidOperationException or IOException)
        {
            return new AgentError(StatusCodes.Status502BadGateway, "upstream_error", $"The upstream MCP server could not list its tools: {exception.Message}");
        }

        var byTool = server.ToolMappings.ToDictionary(m => m.ToolName, StringComparer.Ordinal);
        var listed = tools.Select(tool => byTool.TryGetValue(tool.Name, out var mapped)
            ? new ToolView(tool.Name, tool.Title, tool.Description, mapped.Binding.View(), "mapped")
            : new ToolView(tool.Name, tool.Title, tool.Description, server.DefaultBinding?.View(), server.DefaultBinding is null ? null : "default")).ToList();
        var names = tools.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        return new ToolList(server.Id, listed, McpServerService.View(server, baseUrl).ToolMappings.Where(m => !names.Contains(m.Tool)).ToList());
    }
}

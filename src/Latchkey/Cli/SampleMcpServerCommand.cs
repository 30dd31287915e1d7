using System.CommandLine;
using System.ComponentModel;
using System.Net.Http.Headers;
using ModelContextProtocol.AspNetCore;
using ModelContextProtocol.Server;

namespace Latchkey.Cli;

/// <summary>
/// <c>latchkey sample-mcp-server</c>: a small MCP server (the official SDK's) to try the gateway
/// with on one machine, no internet needed (docs/quickstart.md). Its <c>whoami</c> tool asks
/// Latchkey's <c>/external-api/v1/me</c> who the token the gateway put on the call belongs to, so a
/// successful call shows the whole path: broker credential, gateway, upstream, provider API.
/// It listens on loopback only and is not part of the server.
/// </summary>
public static class SampleMcpServerCommand
{
    public const string HttpClientName = "sample-mcp-latchkey";

    public static Command Create()
    {
        var port = new Option<int>("--port") { Description = "The loopback port to listen on (the endpoint is http://127.0.0.1:PORT/mcp).", DefaultValueFactory = _ => 5100 };
        var latchkey = new Option<string>("--latchkey") { Description = "The Latchkey server whose /external-api/v1/me the whoami tool asks.", DefaultValueFactory = _ => "http://localhost:5000" };
        var command = new Command("sample-mcp-server",
            "Run a small MCP server (tools: whoami, echo) on loopback, to try the MCP gateway on one machine (docs/quickstart.md).") { port, latchkey };
        command.Validators.Add(result =>
        {
            if (result.GetValue(port) is < 1 or > 65535)
            {
                result.AddError("--port must be between 1 and 65535.");
            }
            if (!Uri.TryCreate(result.GetValue(latchkey), UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            {
                result.AddError("--latchkey must be an http or https address, such as http://localhost:5000.");
            }
        });
        command.SetAction(async (parse, cancellationToken) =>
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls($"http://127.0.0.1:{parse.GetValue(port)}");
            builder.Logging.ClearProviders();
            builder.Services.AddHttpContextAccessor();
            builder.Services.AddHttpClient(HttpClientName, client => client.BaseAddress = new Uri(parse.GetValue(latchkey)!.TrimEnd('/') + "/"));
            builder.Services.AddMcpServer(options => options.ServerInfo = new() { Name = "latchkey-sample", Version = "1.0.0" })
                .WithHttpTransport(options => options.SessionMode = HttpServerSessionMode.Stateless)
                .WithTools<SampleTools>();
            await using var app = builder.Build();
            app.MapMcp("/mcp");
            await app.StartAsync(cancellationToken);
            await parse.InvocationConfiguration.Output.WriteLineAsync(
                $"Sample MCP server at http://127.0.0.1:{parse.GetValue(port)}/mcp (tools: whoami, echo). Ctrl+C stops it.");
            await app.WaitForShutdownAsync(cancellationToken);
            return CliContext.Success;
        });
        return command;
    }

    internal sealed class SampleTools
    {
        [McpServerTool(Name = "whoami"), Description("Says whose Latchkey account the token on this call belongs to (asks Latchkey's /external-api/v1/me with it).")]
        public static async Task<string> WhoAmI(IHttpContextAccessor http, IHttpClientFactory clients, CancellationToken cancellationToken)
        {
            var authorization = http.HttpContext?.Request.Headers.Authorization.ToString();
            if (string.IsNullOrEmpty(authorization) || !AuthenticationHeaderValue.TryParse(authorization, out var header))
            {
                return "This call carried no Authorization header: map a credential to the server or the tool.";
            }
            using var request = new HttpRequestMessage(HttpMethod.Get, "external-api/v1/me") { Headers = { Authorization = header } };
            using var response = await clients.CreateClient(HttpClientName).SendAsync(request, cancellationToken);
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            return response.IsSuccessStatusCode ? $"The token belongs to {body}" : $"Latchkey refused the token ({(int)response.StatusCode}): {body}";
        }

        [McpServerTool(Name = "echo"), Description("Answers with the text it is given.")]
        public static string Echo(string text) => text;
    }
}

using System.Collections.Concurrent;
using System.ComponentModel;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ModelContextProtocol;
using ModelContextProtocol.AspNetCore;
using ModelContextProtocol.Server;

namespace Latchkey.Tests.Infrastructure;

/// <summary>One HTTP request the upstream received, with the credentials it carried.</summary>
public sealed record UpstreamRequest(string HttpMethod, string? RpcMethod, string? Tool, string? Authorization, string? CustomHeader,
    string? ApiKeyHeader, string? Cookie, string? SessionId, JsonElement? RpcId = null, IReadOnlyList<string>? HeaderNames = null,
    string? TraceParent = null, JsonElement? Arguments = null);

/// <summary>
/// An upstream MCP server built with the official SDK, on loopback. It records every request and the
/// credentials on it; its tools answer with a fingerprint of the credential, never the credential.
/// </summary>
public sealed class TestMcpUpstream : IAsyncDisposable
{
    public const string CustomHeader = "X-Upstream-Token";

    private WebApplication _app = null!;

    public Uri Endpoint { get; private set; } = null!;
    public ConcurrentQueue<UpstreamRequest> Requests { get; } = new();

    /// <summary>Answer 401 (with the upstream's own challenge) to requests without an Authorization header.</summary>
    public bool RequireAuthorization { get; set; }

    /// <summary>Answer every request with a 307 to this address.</summary>
    public string? RedirectTo { get; set; }

    /// <summary>Completed when a wait_for_cancel call is canceled.</summary>
    public TaskCompletionSource WaitCanceled { get; private set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completed when a wait_for_cancel call starts.</summary>
    public TaskCompletionSource WaitStarted { get; private set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static async Task<TestMcpUpstream> StartAsync()
    {
        var upstream = new TestMcpUpstream();
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(upstream);
        builder.Services.AddHttpContextAccessor();
        builder.Services.AddMcpServer()
            // Sessions for clients that initialize (2025-11-25 and before); per-request for later revisions.
            .WithHttpTransport(options => options.SessionMode = HttpServerSessionMode.StatefulForInitializeClients)
            .WithTools<UpstreamTools>();
        var app = builder.Build();
        app.Use(upstream.RecordAsync);
        app.MapMcp("/mcp");
        await app.StartAsync();
        upstream._app = app;
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        upstream.Endpoint = new Uri(address.TrimEnd('/') + "/mcp");
        return upstream;
    }

    public static string Fingerprint(string? credential) =>
        credential is null ? "none" : Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(credential)))[..12];

    public void ResetCancellation()
    {
        WaitCanceled = new(TaskCreationOptions.RunContinuationsAsynchronously);
        WaitStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>The tool calls received for <paramref name="tool"/>.</summary>
    public List<UpstreamRequest> CallsOf(string tool) => Requests.Where(r => r.Tool == tool).ToList();

    private async Task RecordAsync(HttpContext context, RequestDelegate next)
    {
        string? method = null, tool = null;
        JsonElement? id = null, arguments = null;
        if (HttpMethods.IsPost(context.Request.Method))
        {
            context.Request.EnableBuffering();
            try
            {
                using var document = await JsonDocument.ParseAsync(context.Request.Body);
                var root = document.RootElement;
                if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("method", out var m))
                {
                    method = m.GetString();
                    id = root.TryGetProperty("id", out var i) ? i.Clone() : null;
                    if (method == "tools/call" && root.TryGetProperty("params", out var p) && p.TryGetProperty("name", out var n))
                    {
                        tool = n.GetString();
                        arguments = p.TryGetProperty("arguments", out var a) ? a.Clone() : null;
                    }
                }
            }
            catch (JsonException)
            {
            }
            context.Request.Body.Position = 0;
        }
        var headers = context.Request.Headers;
        Requests.Enqueue(new UpstreamRequest(context.Request.Method, method, tool,
            headers.Authorization.Count > 0 ? headers.Authorization.ToString() : null,
            headers.TryGetValue(CustomHeader, out var custom) ? custom.ToString() : null,
            headers.TryGetValue("X-API-Key", out var apiKey) ? apiKey.ToString() : null,
            headers.Cookie.Count > 0 ? headers.Cookie.ToString() : null,
            headers.TryGetValue("Mcp-Session-Id", out var session) ? session.ToString() : null, id, [.. headers.Keys],
            headers.TryGetValue("traceparent", out var trace) ? trace.ToString() : null, arguments));

        if (tool == "break_off")
        {
            // Starts a JSON answer and drops the connection in the middle of it.
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync("{\"jsonrpc\":\"2.0\",\"id\":");
            await context.Response.Body.FlushAsync();
            // Long enough for the gateway to have the headers: the break comes mid-answer.
            await Task.Delay(300);
            context.Abort();
            return;
        }

        if (RedirectTo is { } target)
        {
            context.Response.StatusCode = StatusCodes.Status307TemporaryRedirect;
            context.Response.Headers.Location = target;
            return;
        }

        if (RequireAuthorization && headers.Authorization.Count == 0)
        {
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            context.Response.Headers.WWWAuthenticate = "Bearer resource_metadata=\"https://upstream.example.com/.well-known/oauth-protected-resource\"";
            return;
        }
        await next(context);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

[McpServerToolType]
public sealed class UpstreamTools
{
    [McpServerTool(Name = "read_repo"), Description("Reads a repository (answers with a fingerprint of the credential it received).")]
    public static string ReadRepo(IHttpContextAccessor http, string repo) => $"read {repo} with {Credential(http)}";

    [McpServerTool(Name = "delete_repo"), Description("Deletes a repository (answers with a fingerprint of the credential it received).")]
    public static string DeleteRepo(IHttpContextAccessor http, string repo) => $"deleted {repo} with {Credential(http)}";

    [McpServerTool(Name = "slow"), Description("Answers after the given number of seconds.")]
    public static async Task<string> Slow(int seconds, CancellationToken cancellationToken)
    {
        await Task.Delay(TimeSpan.FromSeconds(seconds), cancellationToken);
        return "slow done";
    }

    [McpServerTool(Name = "add_tool"), Description("Adds a tool of the given name; the server then announces that its tool list changed.")]
    public static string AddTool(McpServer server, string name)
    {
        server.ServerOptions.ToolCollection!.Add(McpServerTool.Create(() => "added", new McpServerToolCreateOptions { Name = name, Description = "Added while running." }));
        return "added " + name;
    }

    [McpServerTool(Name = "break_off"), Description("Never answers whole: the server drops the connection mid-answer.")]
    public static string BreakOff() => "unreachable";

    [McpServerTool(Name = "search"), Description("Searches (answers with a fingerprint of the credential it received).")]
    public static string Search(IHttpContextAccessor http, string query) => $"searched {query} with {Credential(http)}";

    [McpServerTool(Name = "count"), Description("Counts to n, reporting progress on the way.")]
    public static async Task<string> Count(int n, IProgress<ProgressNotificationValue> progress, CancellationToken cancellationToken)
    {
        for (var i = 1; i <= n; i++)
        {
            progress.Report(new ProgressNotificationValue { Progress = i, Total = n, Message = $"step {i}" });
            await Task.Delay(20, cancellationToken);
        }
        return $"counted to {n}";
    }

    [McpServerTool(Name = "wait_for_cancel"), Description("Waits until the call is canceled.")]
    public static async Task<string> WaitForCancel(TestMcpUpstream upstream, CancellationToken cancellationToken)
    {
        upstream.WaitStarted.TrySetResult();
        try
        {
            await Task.Delay(TimeSpan.FromMinutes(2), cancellationToken);
            return "not canceled";
        }
        catch (OperationCanceledException)
        {
            upstream.WaitCanceled.TrySetResult();
            throw;
        }
    }

    private static string Credential(IHttpContextAccessor http)
    {
        var headers = http.HttpContext!.Request.Headers;
        var presented = headers.Authorization.Count > 0 ? headers.Authorization.ToString() : headers.TryGetValue(TestMcpUpstream.CustomHeader, out var custom) ? custom.ToString() : null;
        return "credential " + TestMcpUpstream.Fingerprint(presented);
    }
}

// The ceiling target: a plain ASP.NET Core endpoint that reads a form post and answers a small
// JSON document, on the same host and Kestrel defaults Latchkey runs with. A request/response
// service on this machine cannot do much better, so Latchkey's workloads are shares of it.
var builder = WebApplication.CreateBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
var app = builder.Build();

app.MapPost("/introspect", async (HttpRequest request) =>
{
    var form = await request.ReadFormAsync();
    return Results.Json(new CeilingAnswer(true, form["token"].ToString().Length, "ceiling"), CeilingJson.Default.CeilingAnswer);
});
app.MapGet("/healthz", () => "ok");

// The upstream of the MCP gateway workload: a stateless Streamable-HTTP MCP endpoint answering a
// tools/call in JSON. The gateway's overhead is its latency minus this endpoint's, measured directly.
app.MapPost("/mcp", async (HttpRequest request) =>
{
    using var message = await System.Text.Json.JsonDocument.ParseAsync(request.Body);
    var id = message.RootElement.GetProperty("id").GetInt64();
    var credential = request.Headers.Authorization.Count > 0 ? "with a credential" : "without a credential";
    return Results.Json(new ToolCallAnswer("2.0", id, new ToolResult([new TextContent("text", "called " + credential)], false)), CeilingJson.Default.ToolCallAnswer);
});

await app.RunAsync();

internal sealed record CeilingAnswer(bool Active, int TokenLength, string ClientId);

internal sealed record ToolCallAnswer(
    [property: System.Text.Json.Serialization.JsonPropertyName("jsonrpc")] string JsonRpc,
    [property: System.Text.Json.Serialization.JsonPropertyName("id")] long Id,
    [property: System.Text.Json.Serialization.JsonPropertyName("result")] ToolResult Result);

internal sealed record ToolResult(
    [property: System.Text.Json.Serialization.JsonPropertyName("content")] TextContent[] Content,
    [property: System.Text.Json.Serialization.JsonPropertyName("isError")] bool IsError);

internal sealed record TextContent(
    [property: System.Text.Json.Serialization.JsonPropertyName("type")] string Type,
    [property: System.Text.Json.Serialization.JsonPropertyName("text")] string Text);

[System.Text.Json.Serialization.JsonSerializable(typeof(CeilingAnswer))]
[System.Text.Json.Serialization.JsonSerializable(typeof(ToolCallAnswer))]
internal sealed partial class CeilingJson : System.Text.Json.Serialization.JsonSerializerContext;

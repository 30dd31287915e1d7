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

await app.RunAsync();

internal sealed record CeilingAnswer(bool Active, int TokenLength, string ClientId);

[System.Text.Json.Serialization.JsonSerializable(typeof(CeilingAnswer))]
internal sealed partial class CeilingJson : System.Text.Json.Serialization.JsonSerializerContext;

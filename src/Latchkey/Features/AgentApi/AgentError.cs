using System.Reflection;
using System.Text.Json.Serialization;
using Latchkey.Common;
using Microsoft.AspNetCore.Http.Metadata;

namespace Latchkey.Features.AgentApi;

/// <summary>
/// An error of the agent API: the HTTP status and the body <c>{ "error": code, "message": text }</c>
/// (<see cref="AgentErrorBody"/>). A typed result: an endpoint returns it as it is, and the OpenAPI
/// document describes it.
/// </summary>
public sealed record AgentError(int Status, string Error, string Message) : IResult, IStatusCodeHttpResult, IValueHttpResult, IEndpointMetadataProvider
{
    int? IStatusCodeHttpResult.StatusCode => Status;

    object? IValueHttpResult.Value => Body;

    /// <summary>What goes on the wire.</summary>
    public AgentErrorBody Body => new(Error, Message);

    public Task ExecuteAsync(HttpContext httpContext)
    {
        httpContext.Response.StatusCode = Status;
        return httpContext.Response.WriteAsJsonAsync(Body, AgentJson.Options, AgentJson.ResponseContentType, httpContext.RequestAborted);
    }

    public static AgentError BadRequest(string message) => new(StatusCodes.Status400BadRequest, "invalid_request", message);
    public static AgentError NotFound(string what, string message) => new(StatusCodes.Status404NotFound, $"{what}_not_found", message);
    public static AgentError Conflict(string error, string message) => new(StatusCodes.Status409Conflict, error, message);
    public static AgentError Gone(string message) => new(StatusCodes.Status410Gone, "state_expired", message);
    public static AgentError Provider(string message) => new(StatusCodes.Status502BadGateway, "provider_error", message);
    public static AgentError Unavailable(string message) => new(StatusCodes.Status503ServiceUnavailable, "temporarily_unavailable", message);

    /// <summary>The errors every agent endpoint may answer with, for the OpenAPI document.</summary>
    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder)
    {
        foreach (var status in (int[])[StatusCodes.Status400BadRequest, StatusCodes.Status404NotFound, StatusCodes.Status409Conflict])
        {
            builder.Metadata.Add(new ProducesResponseTypeMetadata(status, typeof(AgentErrorBody), [AgentJson.ContentType]));
        }
    }
}

/// <summary>The agent API's error body: a machine-readable code and a sentence for people.</summary>
public sealed record AgentErrorBody(
    [property: JsonPropertyName("error")] string Error,
    [property: JsonPropertyName("message")] string Message);

/// <summary>The agent API's errors for what happens outside its endpoints (401, 429), in its shape.</summary>
internal sealed class AgentErrorShape : IErrorShape
{
    public static AgentErrorShape Instance { get; } = new();

    public Task WriteAsync(HttpContext context, int status, string code, string message) =>
        new AgentError(status, code, message).ExecuteAsync(context);
}

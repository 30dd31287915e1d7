using System.Reflection;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Http.Metadata;

namespace Latchkey.Features.AgentApi;

/// <summary>A successful agent API answer: <typeparamref name="T"/> as the agent API's JSON, with its status.</summary>
public abstract class AgentJsonResult<T>(T value, int statusCode) : IResult, IStatusCodeHttpResult, IValueHttpResult<T>
{
    public T Value { get; } = value;

    public int StatusCode { get; } = statusCode;

    int? IStatusCodeHttpResult.StatusCode => StatusCode;

    public Task ExecuteAsync(HttpContext httpContext)
    {
        httpContext.Response.StatusCode = StatusCode;
        return httpContext.Response.WriteAsJsonAsync(Value, AgentJson.Options, AgentJson.ResponseContentType, httpContext.RequestAborted);
    }

    /// <summary>For the OpenAPI document: this status answers with <typeparamref name="T"/> as JSON.</summary>
    protected static void Describe(EndpointBuilder builder, int statusCode) =>
        builder.Metadata.Add(new ProducesResponseTypeMetadata(statusCode, typeof(T), [AgentJson.ContentType]));
}

#pragma warning disable CA1000 // IEndpointMetadataProvider's static member, called per T
/// <summary>200 OK with <typeparamref name="T"/>.</summary>
public sealed class AgentOk<T>(T value) : AgentJsonResult<T>(value, StatusCodes.Status200OK), IEndpointMetadataProvider
{
    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) => Describe(builder, StatusCodes.Status200OK);
}

/// <summary>201 Created with <typeparamref name="T"/>, the resource made.</summary>
public sealed class AgentCreated<T>(T value) : AgentJsonResult<T>(value, StatusCodes.Status201Created), IEndpointMetadataProvider
{
    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) => Describe(builder, StatusCodes.Status201Created);
}
#pragma warning restore CA1000

/// <summary>The agent API's typed results, as <c>TypedResults</c> is for the rest.</summary>
public static class AgentResults
{
    public static AgentOk<T> Ok<T>(T value) => new(value);

    public static AgentCreated<T> Created<T>(T value) => new(value);
}

/// <summary>
/// What an agent API operation of a service gives: its value, or the error to answer with.
/// Deconstructs as <c>var (value, error) = …</c>.
/// </summary>
public readonly struct Outcome<T> where T : class
{
    private Outcome(T? value, AgentError? error)
    {
        Value = value;
        Error = error;
    }

    public T? Value { get; }

    public AgentError? Error { get; }

    public static implicit operator Outcome<T>(T value) => new(value, null);

    public static implicit operator Outcome<T>(AgentError error) => new(null, error);

    public void Deconstruct(out T? value, out AgentError? error)
    {
        value = Value;
        error = Error;
    }

    /// <summary>The answer: <paramref name="view"/> of the value, or the error.</summary>
    public Results<AgentOk<TView>, AgentError> ToOk<TView>(Func<T, TView> view) =>
        Value is { } value ? AgentResults.Ok(view(value)) : Error!;

    public Results<AgentOk<T>, AgentError> ToOk() => Value is { } value ? AgentResults.Ok(value) : Error!;

    public Results<AgentCreated<TView>, AgentError> ToCreated<TView>(Func<T, TView> view) =>
        Value is { } value ? AgentResults.Created(view(value)) : Error!;
}

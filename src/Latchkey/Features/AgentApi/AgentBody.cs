using System.Reflection;
using Microsoft.AspNetCore.Http.Metadata;

namespace Latchkey.Features.AgentApi;

/// <summary>
/// An agent API request body, read with the agent API's JSON rules. A body that cannot be read is
/// not bound as an exception (which would be problem details): it carries its error, and
/// <see cref="AgentApiFilter"/> answers with it before the endpoint runs.
/// </summary>
public sealed class AgentBody<T> : IAgentBody, IBindableFromHttpContext<AgentBody<T>>, IEndpointParameterMetadataProvider
    where T : class
{
    private AgentBody(T? value, AgentError? error)
    {
        _value = value;
        ReadError = error;
    }

    private readonly T? _value;

    /// <summary>The body; the endpoint runs only when it was read.</summary>
    public T Value => _value ?? throw new InvalidOperationException("The body was not read; AgentApiFilter answers before the endpoint runs.");

    public AgentError? ReadError { get; }

    // Static members of the binding and metadata interfaces, which minimal APIs call per T.
#pragma warning disable CA1000
    public static async ValueTask<AgentBody<T>?> BindAsync(HttpContext context, ParameterInfo parameter)
    {
        var (body, error) = await AgentJson.ReadAsync<T>(context.Request);
        return new AgentBody<T>(body, error);
    }

    public static void PopulateMetadata(ParameterInfo parameter, EndpointBuilder builder) =>
        builder.Metadata.Add(new AcceptsMetadata([AgentJson.ContentType], typeof(T)));
#pragma warning restore CA1000
}

/// <summary>A bound <see cref="AgentBody{T}"/>, whatever its type.</summary>
public interface IAgentBody
{
    /// <summary>Why the body could not be read; null when it was.</summary>
    AgentError? ReadError { get; }
}

/// <summary>Answers a request whose body could not be read with the body's error, before the endpoint runs.</summary>
internal sealed class AgentApiFilter : IEndpointFilter
{
    public ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        foreach (var argument in context.Arguments)
        {
            if (argument is IAgentBody { ReadError: { } error })
            {
                return ValueTask.FromResult<object?>(error);
            }
        }
        return next(context);
    }
}

using System.Text.Json;
using System.Text.Json.Serialization;
using Latchkey.Common;

namespace Latchkey.Features.AgentApi;

/// <summary>The agent API's JSON: snake_case, unknown members refused, no NUL in a string, instants in UTC with Z.</summary>
public static class AgentJson
{
    public const string ContentType = "application/json";

    /// <summary>What responses are labelled with, as <c>Results.Json</c> labels them.</summary>
    public const string ResponseContentType = "application/json; charset=utf-8";

    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        Converters = { new NulRejectingStringConverter(), new UtcTimestampConverter() },
    };

    /// <summary>Reads a request body, answering a malformed one in the agent API's error shape.</summary>
    public static async Task<(T? Body, AgentError? Error)> ReadAsync<T>(HttpRequest request) where T : class
    {
        if (request.ContentType?.StartsWith(ContentType, StringComparison.OrdinalIgnoreCase) != true)
        {
            return (null, AgentError.BadRequest("Send a JSON object with 'Content-Type: application/json'."));
        }
        try
        {
            var body = await JsonSerializer.DeserializeAsync<T>(request.Body, Options, request.HttpContext.RequestAborted);
            return body is null ? (null, AgentError.BadRequest("The body must be a JSON object.")) : (body, null);
        }
        catch (JsonException exception)
        {
            return (null, AgentError.BadRequest($"The body is not valid JSON for this call: {InputEcho.JsonError(exception)}"));
        }
        catch (BadHttpRequestException exception)
        {
            return (null, new AgentError(exception.StatusCode, "invalid_request", "The request body could not be read (too large?)."));
        }
    }
}

using System.Text.Json;
using System.Text.Json.Serialization;
using Latchkey.Common;

namespace Latchkey.Features.Broker;

/// <summary>A broker error in the wire contract's shape: <c>{ "error": code, "message": text }</c>.</summary>
public sealed record BrokerError(
    [property: JsonIgnore] int Status,
    [property: JsonPropertyName("error")] string Error,
    [property: JsonPropertyName("message")] string Message)
{
    public IResult ToResult() => Results.Json(this, statusCode: Status);

    public static BrokerError BadRequest(string message) => new(StatusCodes.Status400BadRequest, "invalid_request", message);
    public static BrokerError NotFound(string what, string message) => new(StatusCodes.Status404NotFound, $"{what}_not_found", message);
    public static BrokerError Conflict(string error, string message) => new(StatusCodes.Status409Conflict, error, message);
    public static BrokerError Gone(string message) => new(StatusCodes.Status410Gone, "state_expired", message);
    public static BrokerError Provider(string message) => new(StatusCodes.Status502BadGateway, "provider_error", message);
    public static BrokerError Unavailable(string message) => new(StatusCodes.Status503ServiceUnavailable, "temporarily_unavailable", message);
}

/// <summary>Marks endpoints whose errors, 401 included, use the broker shape rather than problem details.</summary>
public sealed class BrokerErrorShape;

/// <summary>Reads broker request bodies, answering malformed ones in the broker's error shape.</summary>
public static class BrokerJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        Converters = { new NulRejectingStringConverter() },
    };

    public static async Task<(T? Body, BrokerError? Error)> ReadAsync<T>(HttpRequest request) where T : class
    {
        if (request.ContentType?.StartsWith("application/json", StringComparison.OrdinalIgnoreCase) != true)
        {
            return (null, BrokerError.BadRequest("Send a JSON object with 'Content-Type: application/json'."));
        }
        try
        {
            var body = await JsonSerializer.DeserializeAsync<T>(request.Body, Options, request.HttpContext.RequestAborted);
            return body is null ? (null, BrokerError.BadRequest("The body must be a JSON object.")) : (body, null);
        }
        catch (JsonException exception)
        {
            return (null, BrokerError.BadRequest($"The body is not valid JSON for this call: {InputEcho.JsonError(exception)}"));
        }
        catch (BadHttpRequestException exception)
        {
            return (null, new BrokerError(exception.StatusCode, "invalid_request", "The request body could not be read (too large?)."));
        }
    }
}

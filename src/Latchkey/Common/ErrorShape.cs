namespace Latchkey.Common;

/// <summary>
/// Endpoint metadata of an API whose errors are not problem details (the agent API's
/// <c>{ "error", "message" }</c>): how an error that arises outside its endpoints (an
/// authentication challenge, a rate limit) is written for them. Authentication and rate limiting
/// look it up on the endpoint; they need not know the API that declares it.
/// </summary>
public interface IErrorShape
{
    Task WriteAsync(HttpContext context, int status, string code, string message);
}

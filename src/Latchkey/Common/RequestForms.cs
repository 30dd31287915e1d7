namespace Latchkey.Common;

/// <summary>
/// Reading a body that is not a valid form (an escaped NUL, a multipart body without a boundary)
/// throws, which would be a 500; here it is the client's <c>invalid_request</c>. The failure is
/// remembered on the request, since the body cannot be read twice.
/// </summary>
internal static class RequestForms
{
    public const string UnreadableDescription = "The form body cannot be read: it is not valid form encoding (check escapes and the content type).";
    private const string UnreadableItem = "latchkey.unreadable-form";

    public static async Task<IFormCollection?> TryReadAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (request.HttpContext.Items.ContainsKey(UnreadableItem))
        {
            return null;
        }
        try
        {
            return await request.ReadFormAsync(cancellationToken);
        }
        catch (Exception exception) when (exception is InvalidDataException || exception is IOException and not BadHttpRequestException)
        {
            // BadHttpRequestException (too large, client gone) keeps its own status through the exception handler.
            request.HttpContext.Items[UnreadableItem] = true;
            return null;
        }
    }
}

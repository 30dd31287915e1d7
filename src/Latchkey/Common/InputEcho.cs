namespace Latchkey.Common;

/// <summary>
/// Caller input quoted in an error message. Only a short prefix is echoed, so that a megabyte
/// sent is not a megabyte answered (or reflected into a page, a log line or another system).
/// </summary>
public static class InputEcho
{
    /// <summary>The most characters of caller input an error message repeats.</summary>
    public const int MaxLength = 64;

    /// <summary><c>'value'</c>, or <c>'first 64 characters…' (N characters)</c> for longer input.</summary>
    public static string Quote(string? value) => $"'{Prefix(value)}'" + (value is { Length: > MaxLength } ? $" ({value.Length} characters)" : "");

    /// <summary>The input itself when short, otherwise its first characters and an ellipsis.</summary>
    public static string Prefix(string? value)
    {
        if (value is null || value.Length <= MaxLength)
        {
            return value ?? "";
        }
        // Never cut a surrogate pair in two.
        var length = char.IsHighSurrogate(value[MaxLength - 1]) ? MaxLength - 1 : MaxLength;
        return string.Concat(value.AsSpan(0, length), "…");
    }
}

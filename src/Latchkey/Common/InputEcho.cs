using System.Text.Json;
using System.Text.RegularExpressions;

namespace Latchkey.Common;

/// <summary>
/// Caller input quoted in an error message. Only a short prefix is echoed, so that a megabyte
/// sent is not a megabyte answered (or reflected into a page, a log line or another system).
/// </summary>
public static partial class InputEcho
{
    /// <summary>The most characters of caller input an error message repeats.</summary>
    public const int MaxLength = 64;

    /// <summary>The longest a library's message about caller input is passed on (its own words and the cut quotes fit well within).</summary>
    public const int MaxLibraryMessageLength = 400;

    /// <summary><c>'value'</c>, or <c>'first 64 characters…' (N characters)</c> for longer input.</summary>
    public static string Quote(string? value) => $"'{Prefix(value)}'" + (value is { Length: > MaxLength } ? $" ({value.Length} characters)" : "");

    /// <summary>The input itself when short, otherwise its first characters and an ellipsis.</summary>
    public static string Prefix(string? value) => Prefix(value, MaxLength);

    /// <summary>
    /// A message a library wrote about caller input (parameter binding, a JSON reader), with each
    /// value it quotes ('…' or "…") cut to a prefix, and the whole cut to
    /// <see cref="MaxLibraryMessageLength"/> for input that itself holds a quote character.
    /// </summary>
    public static string LibraryMessage(string message) =>
        Prefix(QuotedValue().Replace(message, match => match.Value[0] + Prefix(match.Value[1..^1]) + match.Value[0]), MaxLibraryMessageLength);

    /// <summary>
    /// A System.Text.Json error for the caller: its sentence with quoted values cut, and its JSON
    /// path cut (a property name is caller input of any length, and the message repeats it).
    /// </summary>
    public static string JsonError(JsonException exception)
    {
        var message = exception.Message;
        // System.Text.Json appends " Path: $.x | LineNumber: 0 | BytePositionInLine: 5." to what it writes itself.
        var at = message.IndexOf(" Path: ", StringComparison.Ordinal);
        if (at < 0 || exception.Path is null)
        {
            return LibraryMessage(message);
        }
        var sentence = LibraryMessage(message[..at]);
        var position = exception.LineNumber is { } line ? $" | LineNumber: {line} | BytePositionInLine: {exception.BytePositionInLine}" : "";
        return $"{sentence} Path: {Prefix(exception.Path)}{position}.";
    }

    private static string Prefix(string? value, int maxLength)
    {
        if (value is null || value.Length <= maxLength)
        {
            return value ?? "";
        }
        // Never cut a surrogate pair in two.
        var length = char.IsHighSurrogate(value[maxLength - 1]) ? maxLength - 1 : maxLength;
        return string.Concat(value.AsSpan(0, length), "…");
    }

    [GeneratedRegex(@"'[^']*'|""[^""]*""")]
    private static partial Regex QuotedValue();
}

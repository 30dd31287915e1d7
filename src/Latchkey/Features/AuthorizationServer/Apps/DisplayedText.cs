using System.Globalization;
using System.Text;

namespace Latchkey.Features.AuthorizationServer.Apps;

/// <summary>
/// App metadata that people read (names, descriptions, addresses on the consent page) must be
/// plain visible text: no control, format or bidi characters that hide text or reorder it
/// (U+202E turns "Latchkey-gpj.exe" around), no private-use or unassigned code points, no lone
/// surrogates, no line or paragraph separators.
/// </summary>
public static class DisplayedText
{
    /// <summary>Whether a code point of this category may not appear in displayed metadata.</summary>
    private static bool IsHidden(UnicodeCategory category) => category is
        UnicodeCategory.Control              // Cc: C0 and C1 controls, NUL to U+001F, U+007F to U+009F
        or UnicodeCategory.Format            // Cf: U+200B–U+200F, U+202A–U+202E, U+2066–U+2069, U+FEFF, soft hyphen…
        or UnicodeCategory.Surrogate         // Cs: only ever lone here; pairs are read as one code point
        or UnicodeCategory.PrivateUse        // Co: renders as whatever a font decides
        or UnicodeCategory.OtherNotAssigned  // Cn: unassigned; a future meaning nobody can check today
        or UnicodeCategory.LineSeparator     // Zl: U+2028
        or UnicodeCategory.ParagraphSeparator; // Zp: U+2029

    /// <summary>
    /// The first character of <paramref name="value"/> that may not be displayed, as <c>U+202E</c>,
    /// or null when there is none. Line breaks (CR, LF) are allowed where <paramref name="allowLineBreaks"/>
    /// says so: a description typed into a textarea has them, and HTML shows them as spaces.
    /// </summary>
    public static string? FirstHiddenCharacter(string? value, bool allowLineBreaks = false)
    {
        if (value is null)
        {
            return null;
        }
        for (var index = 0; index < value.Length; index++)
        {
            var c = value[index];
            if (allowLineBreaks && c is '\r' or '\n')
            {
                continue;
            }
            if (Rune.DecodeFromUtf16(value.AsSpan(index), out var rune, out var consumed) != System.Buffers.OperationStatus.Done)
            {
                return CodePoint(c);
            }
            if (IsHidden(Rune.GetUnicodeCategory(rune)))
            {
                return CodePoint(rune.Value);
            }
            index += consumed - 1;
        }
        return null;
    }

    /// <summary>
    /// The problem with a displayed field's value in words, or null when it has none. The value
    /// itself is not repeated: it is exactly what should not reach a page or a log.
    /// </summary>
    public static string? Problem(string field, string? value, bool allowLineBreaks = false) =>
        FirstHiddenCharacter(value, allowLineBreaks) is { } hidden
            ? $"The {field} contains an invisible or control character ({hidden}); people read it on the consent page, so it must be visible text."
            : null;

    /// <summary>
    /// Whether a name shows nothing: empty, whitespace only, or only characters that render as
    /// blank although Unicode calls them letters or symbols (Hangul fillers, the Braille blank).
    /// </summary>
    public static bool IsBlank(string? value)
    {
        foreach (var c in value ?? "")
        {
            if (!char.IsWhiteSpace(c) && c is not ('\u2800' or '\u3164' or '\u115F' or '\u1160' or '\uFFA0'))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// <paramref name="value"/> without the characters <see cref="FirstHiddenCharacter"/> refuses, for
    /// showing rows stored before they were refused (new input is refused rather than cleaned).
    /// Hidden whitespace (tabs, line breaks, U+2028) becomes a space, so words stay apart; CR and LF
    /// stay where <paramref name="keepLineBreaks"/> says so (a description in its textarea).
    /// </summary>
    public static string ForDisplay(string? value, bool keepLineBreaks = false)
    {
        if (string.IsNullOrEmpty(value) || FirstHiddenCharacter(value, keepLineBreaks) is null)
        {
            return value ?? "";
        }
        var visible = new StringBuilder(value.Length);
        for (var index = 0; index < value.Length; index++)
        {
            if (Rune.DecodeFromUtf16(value.AsSpan(index), out var rune, out var consumed) != System.Buffers.OperationStatus.Done)
            {
                continue;
            }
            if (!IsHidden(Rune.GetUnicodeCategory(rune)) || (keepLineBreaks && rune.Value is '\r' or '\n'))
            {
                visible.Append(value, index, consumed);
            }
            else if (Rune.IsWhiteSpace(rune))
            {
                visible.Append(' ');
            }
            index += consumed - 1;
        }
        return visible.ToString();
    }

    private static string CodePoint(int value) => $"U+{value:X4}";
}

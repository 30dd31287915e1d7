using System.Text.RegularExpressions;

namespace Latchkey.Common;

/// <summary>What may be the name of an HTTP header: RFC 9110 token characters, up to 100 of them.</summary>
public static partial class HttpHeaderName
{
    public static bool IsValid(string name) => Token().IsMatch(name);

    [GeneratedRegex("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")]
    private static partial Regex Token();
}

namespace Latchkey.Tests.Infrastructure;

/// <summary>
/// Secrets a test created or used, and the strings that would betray each one if it leaked: the
/// value, its URL-encoded form, and distinctive pieces (a log or an error may cut a value short).
/// </summary>
public sealed class KnownSecrets
{
    private readonly Dictionary<string, string> _secrets = new(StringComparer.Ordinal);

    public IReadOnlyDictionary<string, string> All => _secrets;

    public void Add(string what, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            _secrets[what] = value;
        }
    }

    /// <summary>The secrets, by what they are, that <paramref name="text"/> contains (whole or in part).</summary>
    public IReadOnlyList<string> FoundIn(string text, Func<string, bool>? allowed = null)
    {
        var found = new List<string>();
        foreach (var (what, value) in _secrets)
        {
            if (allowed?.Invoke(what) == true)
            {
                continue;
            }
            foreach (var probe in Probes(value))
            {
                if (text.Contains(probe, StringComparison.Ordinal))
                {
                    found.Add($"{what} ('{probe}')");
                    break;
                }
            }
        }
        return found;
    }

    /// <summary>
    /// The value, its escaped form, and for long values its first and last 16 characters. A first
    /// part that is shared by unrelated values is not distinctive and is skipped: the test
    /// provider's <c>provider-access-</c>, and Data Protection payloads (a session cookie), which
    /// all begin with the same magic header and key id as every antiforgery token. Latchkey's own
    /// prefixes are only 6 characters, so their first 16 characters hold 10 random ones.
    /// </summary>
    public static IEnumerable<string> Probes(string value)
    {
        yield return value;
        var escaped = Uri.EscapeDataString(value);
        if (escaped != value)
        {
            yield return escaped;
        }
        if (value.Length >= 32)
        {
            if (!value.StartsWith("provider-", StringComparison.Ordinal) && !value.StartsWith("CfDJ8", StringComparison.Ordinal))
            {
                yield return value[..16];
            }
            yield return value[^16..];
        }
    }
}

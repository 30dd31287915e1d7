using System.Globalization;
using System.Net;
using System.Text;
using Latchkey.Features.Operations;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.AuthorizationServer.Apps;

/// <summary>
/// A name reduced to what it looks like: "Lаtchkey" (Cyrillic а), "L4TCHKEY", "L a t c h k e y" and
/// "Ｌａｔｃｈｋｅｙ" all become <c>latchkey</c>. A heuristic, not Unicode's full confusables data
/// (UTS #39): it covers what is typed to imitate a Latin name (look-alike Cyrillic and Greek letters,
/// digits and symbols for letters, letter pairs that pass for one), and errs towards matching.
/// </summary>
public static class NameSkeleton
{
    /// <summary>Look-alikes of Latin letters, after case folding and NFKC. Small on purpose: extend it when a new trick is seen.</summary>
    private static readonly Dictionary<char, char> Confusables = new()
    {
        // Cyrillic
        ['а'] = 'a', ['в'] = 'b', ['с'] = 'c', ['ԁ'] = 'd', ['е'] = 'e', ['һ'] = 'h', ['н'] = 'h',
        ['і'] = 'l', ['ӏ'] = 'l', ['ј'] = 'j', ['к'] = 'k', ['м'] = 'm', ['о'] = 'o', ['р'] = 'p', ['ԛ'] = 'q',
        ['ѕ'] = 's', ['т'] = 't', ['у'] = 'y', ['ү'] = 'y', ['ԝ'] = 'w', ['х'] = 'x',
        // Greek
        ['α'] = 'a', ['β'] = 'b', ['ε'] = 'e', ['η'] = 'h', ['ι'] = 'l', ['κ'] = 'k', ['μ'] = 'm', ['ν'] = 'n',
        ['ο'] = 'o', ['ρ'] = 'p', ['τ'] = 't', ['υ'] = 'y', ['χ'] = 'x', ['ζ'] = 'z',
        // Digits and symbols written for letters
        ['0'] = 'o', ['1'] = 'l', ['3'] = 'e', ['4'] = 'a', ['5'] = 's', ['7'] = 't', ['$'] = 's', ['@'] = 'a',
        // I, l, 1 and | look alike; after case folding capital I is i
        ['i'] = 'l', ['ı'] = 'l', ['|'] = 'l',
    };

    /// <summary>Letter pairs that pass for one letter, replaced once the separators are gone.</summary>
    private static readonly (string Pair, string Letter)[] LookAlikePairs = [("rn", "m"), ("vv", "w")];

    public static string Of(string value)
    {
        // Compatibility forms (fullwidth, mathematical letters, ligatures) become their plain letters.
        var folded = value.Normalize(NormalizationForm.FormKC).ToLowerInvariant().Normalize(NormalizationForm.FormD);
        var skeleton = new StringBuilder(folded.Length);
        foreach (var c in folded)
        {
            if (CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark)
            {
                continue; // Accents: "Lätchkéy" is "latchkey".
            }
            var mapped = Confusables.GetValueOrDefault(c, c);
            if (char.IsLetterOrDigit(mapped))
            {
                skeleton.Append(mapped);
            }
        }
        foreach (var (pair, letter) in LookAlikePairs)
        {
            skeleton.Replace(pair, letter);
        }
        return skeleton.ToString();
    }
}

/// <summary>
/// The names an app registered by someone else may not imitate: the platform's own ("Latchkey")
/// and the host people reach it at (<c>AuthorizationServer:Issuer</c>, <c>Server:PublicUrl</c>), so
/// that a consent page never seems to be Latchkey asking for itself. A name is refused when its
/// <see cref="NameSkeleton"/> contains a protected name's.
/// </summary>
public sealed class PlatformNames
{
    public const string ProductName = "Latchkey";

    private readonly List<(string Name, string Skeleton)> _protected = [];

    public PlatformNames(IOptions<AuthorizationServerOptions> authorizationServer, IOptions<ServerOptions> server)
    {
        Add(ProductName);
        foreach (var url in new[] { authorizationServer.Value.Issuer, server.Value.PublicUrl })
        {
            // Loopback and IP addresses name no one ("localhost" is an ordinary word in app names).
            if (Uri.TryCreate(url, UriKind.Absolute, out var uri) && !uri.IsLoopback && !IPAddress.TryParse(uri.IdnHost, out _))
            {
                Add(uri.IdnHost);
            }
        }
    }

    public IReadOnlyList<string> Protected => _protected.Select(p => p.Name).ToList();

    /// <summary>The protected name <paramref name="name"/> imitates, or null when it imitates none.</summary>
    public string? Imitated(string name)
    {
        var skeleton = NameSkeleton.Of(name);
        foreach (var (protectedName, protectedSkeleton) in _protected)
        {
            if (skeleton.Contains(protectedSkeleton, StringComparison.Ordinal))
            {
                return protectedName;
            }
        }
        return null;
    }

    private void Add(string name)
    {
        var skeleton = NameSkeleton.Of(name);
        if (skeleton.Length > 0 && !_protected.Any(p => p.Skeleton == skeleton))
        {
            _protected.Add((name, skeleton));
        }
    }
}

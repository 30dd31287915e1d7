using System.Text.RegularExpressions;
using Latchkey.Tests.Infrastructure;

namespace Latchkey.Tests.Operations;

/// <summary>
/// The docs stand on their own: every link in the README and docs/ points at a file of this
/// repository (and at a heading that exists there) or at the reader's own server on localhost,
/// none outside, so they read the same offline and in a copy of the repository.
/// </summary>
public sealed partial class DocumentationTests
{
    public static TheoryData<string> Documents() =>
        [.. new[] { Path.Combine(RepositoryFiles.Root, "README.md") }
            .Concat(Directory.EnumerateFiles(Path.Combine(RepositoryFiles.Root, "docs"), "*.md", SearchOption.AllDirectories))
            .Select(path => Path.GetRelativePath(RepositoryFiles.Root, path))];

    [Theory]
    [MemberData(nameof(Documents))]
    public void Every_link_points_at_a_file_and_heading_of_the_repository(string document)
    {
        var path = Path.Combine(RepositoryFiles.Root, document);
        var problems = new List<string>();
        foreach (var (line, target) in Links(File.ReadAllLines(path)))
        {
            if (OwnServer().IsMatch(target))
            {
                // The server the reader runs on this machine, as the README starts it.
                continue;
            }
            if (Scheme().IsMatch(target))
            {
                problems.Add($"line {line}: {target} is outside the repository");
                continue;
            }
            var (file, anchor) = target.Split('#', 2) is [var f, var a] ? (f, a) : (target, null);
            var linked = file.Length == 0 ? path : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(path)!, Uri.UnescapeDataString(file)));
            if (!linked.StartsWith(RepositoryFiles.Root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                problems.Add($"line {line}: {target} is outside the repository");
            }
            else if (!File.Exists(linked) && !Directory.Exists(linked))
            {
                problems.Add($"line {line}: {target} does not exist");
            }
            else if (anchor is not null && linked.EndsWith(".md", StringComparison.Ordinal) && !Anchors(File.ReadAllLines(linked)).Contains(anchor))
            {
                problems.Add($"line {line}: {target} names no heading of {Path.GetFileName(linked)}");
            }
        }
        Assert.True(problems.Count == 0, $"{document}:\n" + string.Join("\n", problems));
    }

    /// <summary>Markdown links and autolinks outside code blocks and code spans, with their line numbers.</summary>
    private static IEnumerable<(int Line, string Target)> Links(string[] lines)
    {
        var inFence = false;
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].TrimStart().StartsWith("```", StringComparison.Ordinal))
            {
                inFence = !inFence;
                continue;
            }
            if (inFence)
            {
                continue;
            }
            // A file named in code (`../shared/spec/broker-api.md`) counts as a link too.
            foreach (Match span in CodeSpan().Matches(lines[i]))
            {
                if (span.Value.StartsWith("`../", StringComparison.Ordinal))
                {
                    yield return (i + 1, span.Value.Trim('`'));
                }
            }
            var text = CodeSpan().Replace(lines[i], "");
            foreach (Match link in Link().Matches(text))
            {
                yield return (i + 1, link.Groups["target"].Value);
            }
            foreach (Match link in AutoLink().Matches(text))
            {
                yield return (i + 1, link.Groups["target"].Value);
            }
        }
    }

    /// <summary>The anchors GitHub gives a document's headings: lower case, punctuation dropped, spaces as hyphens.</summary>
    private static HashSet<string> Anchors(string[] lines)
    {
        var anchors = new HashSet<string>(StringComparer.Ordinal);
        var inFence = false;
        foreach (var line in lines)
        {
            if (line.TrimStart().StartsWith("```", StringComparison.Ordinal))
            {
                inFence = !inFence;
            }
            else if (!inFence && Heading().Match(line) is { Success: true } heading)
            {
                var slug = Punctuation().Replace(heading.Groups["text"].Value.Trim().ToLowerInvariant(), "").Replace(' ', '-');
                // A repeated heading gets -1, -2, ...
                var unique = slug;
                for (var n = 1; !anchors.Add(unique); n++)
                {
                    unique = $"{slug}-{n}";
                }
            }
        }
        return anchors;
    }

    [GeneratedRegex(@"`[^`]*`")]
    private static partial Regex CodeSpan();

    [GeneratedRegex(@"\]\((?<target>[^)\s]+)(\s+""[^""]*"")?\)")]
    private static partial Regex Link();

    [GeneratedRegex(@"<(?<target>[a-z][a-z0-9+.-]*:[^>\s]+)>", RegexOptions.IgnoreCase)]
    private static partial Regex AutoLink();

    [GeneratedRegex(@"^[a-z][a-z0-9+.-]*:", RegexOptions.IgnoreCase)]
    private static partial Regex Scheme();

    [GeneratedRegex(@"^https?://(localhost|127\.0\.0\.1)(:\d+)?(/|$)", RegexOptions.IgnoreCase)]
    private static partial Regex OwnServer();

    [GeneratedRegex(@"^#{1,6}\s+(?<text>.+?)\s*#*$")]
    private static partial Regex Heading();

    [GeneratedRegex(@"[^\p{L}\p{N}\s_-]")]
    private static partial Regex Punctuation();
}

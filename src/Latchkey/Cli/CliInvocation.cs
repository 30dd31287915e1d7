namespace Latchkey.Cli;

/// <summary>
/// How the person who started this process runs a Latchkey command from where they are, for the
/// commands that messages suggest: <c>latchkey</c> when that is what their PATH finds,
/// <c>dotnet run --project src/Latchkey --</c> when they started a development build that way, or
/// the path of the executable they started.
/// </summary>
public static class CliInvocation
{
    private static readonly Lazy<string> Current = new(() => Describe(
        Environment.ProcessPath, System.Reflection.Assembly.GetEntryAssembly()?.Location, Directory.GetCurrentDirectory(),
        Environment.GetEnvironmentVariable("PATH")));

    /// <summary>What to type before a subcommand: <c>latchkey</c>, <c>dotnet run --project src/Latchkey --</c>, <c>./latchkey</c>, ...</summary>
    public static string Command => Current.Value;

    /// <summary>A suggested command line: <paramref name="arguments"/> after <see cref="Command"/>.</summary>
    public static string Of(string arguments) => $"{Command} {arguments}";

    internal static string Describe(string? processPath, string? entryAssembly, string currentDirectory, string? searchPath)
    {
        if (string.IsNullOrEmpty(processPath))
        {
            return "latchkey";
        }
        // "dotnet latchkey.dll" (a framework-dependent build) or a test host: what counts is the entry assembly.
        var viaDotnetHost = Path.GetFileNameWithoutExtension(processPath) == "dotnet";
        var program = viaDotnetHost ? entryAssembly : processPath;
        if (string.IsNullOrEmpty(program))
        {
            return "latchkey";
        }
        // A build under a project's bin/<configuration>/<framework>/ folder is what dotnet run starts.
        if (ProjectOf(Path.GetDirectoryName(program)!) is { } project)
        {
            return $"dotnet run --project {Relative(project, currentDirectory)} --";
        }
        if (viaDotnetHost)
        {
            return $"dotnet {Relative(program, currentDirectory)}";
        }
        if (FoundOnPath(program, searchPath))
        {
            return Path.GetFileName(program);
        }
        var relative = Relative(program, currentDirectory);
        // A shell looks a bare name up on PATH: a program in the current folder needs "./".
        return relative.Contains(Path.DirectorySeparatorChar, StringComparison.Ordinal) ? relative : "./" + relative;
    }

    /// <summary>The folder of the project whose build output <paramref name="buildFolder"/> is (…/Project/bin/Debug/net10.0), if any.</summary>
    private static string? ProjectOf(string buildFolder)
    {
        var framework = new DirectoryInfo(buildFolder);
        var bin = framework.Parent?.Parent;
        if (bin is not { Name: "bin" } || bin.Parent is not { } project)
        {
            return null;
        }
        return project.EnumerateFiles("*.csproj").Any() ? project.FullName : null;
    }

    private static bool FoundOnPath(string program, string? searchPath)
    {
        var name = Path.GetFileName(program);
        foreach (var folder in (searchPath ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(folder, name);
            if (File.Exists(candidate))
            {
                // The first one PATH finds is the one that runs: it must be this program (or a link to it).
                return SameFile(candidate, program);
            }
        }
        return false;
    }

    private static bool SameFile(string candidate, string program)
    {
        var resolved = new FileInfo(candidate).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(candidate);
        var target = new FileInfo(program).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(program);
        return string.Equals(resolved, target, StringComparison.Ordinal);
    }

    private static string Relative(string path, string currentDirectory)
    {
        var relative = Path.GetRelativePath(currentDirectory, path);
        // Far away (another tree), the absolute path reads better than a row of "../".
        return relative.Split(Path.DirectorySeparatorChar).Count(part => part == "..") > 1 ? path : relative;
    }
}

namespace Latchkey.Tests.Infrastructure;

/// <summary>The repository the tests were built from (the folder of Latchkey.slnx).</summary>
public static class RepositoryFiles
{
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Latchkey.slnx")))
            {
                return directory.FullName;
            }
        }
        return AppContext.BaseDirectory;
    }
}

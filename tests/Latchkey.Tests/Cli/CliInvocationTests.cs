using Latchkey.Cli;

namespace Latchkey.Tests.Cli;

/// <summary>The command that messages and the banner suggest is the one that works from where the user is.</summary>
public sealed class CliInvocationTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("latchkey-invocation-").FullName;

    [Fact]
    public void A_development_build_started_by_dotnet_run_suggests_dotnet_run_with_the_project_path_from_here()
    {
        var build = Folder("src", "Latchkey", "bin", "Debug", "net10.0");
        File.WriteAllText(Path.Combine(_root, "src", "Latchkey", "Latchkey.csproj"), "<Project />");
        var program = FileIn(build, "latchkey");

        Assert.Equal("dotnet run --project src/Latchkey --", CliInvocation.Describe(program, null, _root, "/usr/bin"));
        Assert.Equal("dotnet run --project ../Latchkey --", CliInvocation.Describe(program, null, Folder("src", "Other"), "/usr/bin"));
    }

    [Fact]
    public void An_installed_executable_that_PATH_finds_is_suggested_by_its_name()
    {
        var install = Folder("opt", "latchkey");
        var program = FileIn(install, "latchkey");
        var bin = Folder("usr", "local", "bin");
        File.CreateSymbolicLink(Path.Combine(bin, "latchkey"), program);

        Assert.Equal("latchkey", CliInvocation.Describe(program, null, _root, install));
        Assert.Equal("latchkey", CliInvocation.Describe(program, null, _root, $"/nonexistent:{bin}"));
    }

    [Fact]
    public void An_executable_that_PATH_does_not_find_is_suggested_by_its_path()
    {
        var install = Folder("opt", "latchkey");
        var program = FileIn(install, "latchkey");
        // Another latchkey first on PATH is not this one.
        var other = Folder("elsewhere");
        FileIn(other, "latchkey");

        Assert.Equal("./latchkey", CliInvocation.Describe(program, null, install, other));
        Assert.Equal("opt/latchkey/latchkey", CliInvocation.Describe(program, null, _root, ""));
        Assert.Equal(program, CliInvocation.Describe(program, null, Folder("a", "b", "c", "d"), ""));
    }

    [Fact]
    public void A_build_run_through_the_dotnet_host_is_suggested_with_it()
    {
        var install = Folder("srv");
        var assembly = FileIn(install, "latchkey.dll");

        Assert.Equal("dotnet srv/latchkey.dll", CliInvocation.Describe("/usr/share/dotnet/dotnet", assembly, _root, "/usr/bin"));
        Assert.Equal("latchkey", CliInvocation.Describe(null, null, _root, "/usr/bin"));
    }

    private string Folder(params string[] parts) => Directory.CreateDirectory(Path.Combine([_root, .. parts])).FullName;

    private static string FileIn(string folder, string name)
    {
        var path = Path.Combine(folder, name);
        File.WriteAllText(path, "");
        return path;
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}

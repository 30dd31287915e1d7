using Latchkey.Cli;

namespace Latchkey.Tests.Cli;

/// <summary><c>test-client --open</c> says in one sentence why no browser opened, whatever the machine lacks.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class BrowserLauncherTests
{
    private const string Url = "http://127.0.0.1:5000/auth/authorize?client_id=x";

    private static Func<string, string?> Display(string? display) => name => name == "DISPLAY" ? display : null;

    [Fact]
    public async Task Without_a_graphical_display_nothing_is_started_and_it_says_so()
    {
        var why = await BrowserLauncher.TryOpenAsync(Url, Display(null), "/bin/true", CancellationToken.None);

        Assert.Equal("this session has no graphical display (neither DISPLAY nor WAYLAND_DISPLAY is set)", why);
    }

    [Fact]
    public async Task A_missing_opener_is_named()
    {
        var why = await BrowserLauncher.TryOpenAsync(Url, Display(":0"), "/nonexistent/xdg-open", CancellationToken.None);

        Assert.Equal("/nonexistent/xdg-open is not installed", why);
    }

    [Fact]
    public async Task An_opener_that_fails_is_reported_with_its_exit_code_and_its_own_output_is_dropped()
    {
        var script = Path.Combine(Path.GetTempPath(), $"latchkey-opener-{Guid.NewGuid():N}.sh");
        await File.WriteAllTextAsync(script, "#!/bin/sh\necho 'xdg-open: no method available for opening' >&2\nexit 3\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        try
        {
            var why = await BrowserLauncher.TryOpenAsync(Url, Display(":0"), script, CancellationToken.None);

            Assert.Equal($"{script} could not open a browser (exit code 3)", why);
        }
        finally
        {
            File.Delete(script);
        }
    }

    [Fact]
    public async Task An_opener_that_succeeds_counts_as_opened()
    {
        Assert.Null(await BrowserLauncher.TryOpenAsync(Url, Display(":0"), "/bin/true", CancellationToken.None));
        Assert.Null(await BrowserLauncher.TryOpenAsync(Url, name => name == "WAYLAND_DISPLAY" ? "wayland-0" : null, "/bin/true", CancellationToken.None));
    }
}

using System.ComponentModel;
using System.Diagnostics;

namespace Latchkey.Cli;

/// <summary>
/// Opens an address in the desktop's browser for <c>test-client --open</c>, or tells why it could
/// not, in one sentence: the address is printed anyway, and a machine without a desktop (a
/// server, a container, an SSH session) should not get a screen of xdg-open's complaints.
/// </summary>
internal static class BrowserLauncher
{
    /// <summary>How long an opener may take to say it failed; one still running by then has started a browser.</summary>
    private static readonly TimeSpan OpenerVerdict = TimeSpan.FromSeconds(5);

    /// <summary>Null when a browser was started; otherwise why not, as a sentence.</summary>
    public static Task<string?> TryOpenAsync(string url, CancellationToken cancellationToken) =>
        TryOpenAsync(url, Environment.GetEnvironmentVariable, OperatingSystem.IsMacOS() ? "open" : "xdg-open", cancellationToken);

    internal static async Task<string?> TryOpenAsync(string url, Func<string, string?> environment, string opener, CancellationToken cancellationToken)
    {
        if (OperatingSystem.IsLinux() && string.IsNullOrEmpty(environment("DISPLAY")) && string.IsNullOrEmpty(environment("WAYLAND_DISPLAY")))
        {
            return "this session has no graphical display (neither DISPLAY nor WAYLAND_DISPLAY is set)";
        }
        var start = new ProcessStartInfo(opener, [url])
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        Process? process;
        try
        {
            process = Process.Start(start);
        }
        catch (Win32Exception)
        {
            return $"{opener} is not installed";
        }
        if (process is null)
        {
            return $"{opener} did not start";
        }
        using (process)
        {
            // Read (and drop) what it prints, so that a chatty opener cannot block on a full pipe.
            var drained = Task.WhenAll(process.StandardOutput.ReadToEndAsync(cancellationToken), process.StandardError.ReadToEndAsync(cancellationToken));
            using var verdict = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            verdict.CancelAfter(OpenerVerdict);
            try
            {
                await process.WaitForExitAsync(verdict.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return null;
            }
            await drained;
            return process.ExitCode == 0 ? null : $"{opener} could not open a browser (exit code {process.ExitCode})";
        }
    }
}

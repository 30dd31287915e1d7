using System.Diagnostics;
using Latchkey.Tests.Infrastructure;

namespace Latchkey.Tests.Operations;

/// <summary>
/// The install that docs/operations.md describes: the systemd unit passes systemd's own check with
/// its hardening in place, and the container image runs unprivileged with its data and keys apart.
/// (The release build itself starts in every benchmark run: bench/run.sh publishes it with
/// scripts/release.sh and the smoke run in CI starts it.)
/// </summary>
public sealed class PackagingTests
{
    private static readonly string Unit = File.ReadAllText(Path.Combine(RepositoryFiles.Root, "packaging", "latchkey.service"));

    [Fact]
    public async Task The_systemd_unit_passes_systemd_analyze_verify_without_a_warning()
    {
        // The unit as installed, with its ExecStart pointing at a Latchkey executable that exists here.
        var program = Path.Combine(AppContext.BaseDirectory, "latchkey");
        Assert.True(File.Exists(program), $"No Latchkey executable at {program}");
        var folder = Directory.CreateTempSubdirectory("latchkey-unit-");
        try
        {
            var unit = Path.Combine(folder.FullName, "latchkey.service");
            await File.WriteAllTextAsync(unit, Unit.Replace("/opt/latchkey/latchkey", program, StringComparison.Ordinal));

            var (exitCode, output) = await RunAsync("systemd-analyze", "verify", "--man=no", unit);

            // Unknown or misspelt options are only warnings to systemd: any output is a failure here.
            Assert.True(exitCode == 0 && output.Trim().Length == 0, $"systemd-analyze verify exited {exitCode}:\n{output}");
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData("User=latchkey")]
    [InlineData("NoNewPrivileges=yes")]
    [InlineData("CapabilityBoundingSet=\n")]
    [InlineData("ProtectSystem=strict")]
    [InlineData("ProtectHome=yes")]
    [InlineData("PrivateTmp=yes")]
    [InlineData("PrivateDevices=yes")]
    [InlineData("RestrictSUIDSGID=yes")]
    [InlineData("SystemCallFilter=@system-service")]
    [InlineData("UMask=0077")]
    [InlineData("Environment=DOTNET_ENVIRONMENT=Production")]
    public void The_systemd_unit_is_hardened(string line) => Assert.Contains(line, Unit);

    [Fact]
    public void The_systemd_unit_keeps_the_master_key_out_of_the_data_directory()
    {
        Assert.Contains("WorkingDirectory=/var/lib/latchkey\n", Unit);
        Assert.Contains("LATCHKEY_Vault__KeyFile=/var/lib/latchkey-keys/", Unit);
        Assert.Contains("StateDirectory=latchkey latchkey-keys", Unit);
        Assert.Contains("StateDirectoryMode=0700", Unit);
    }

    [Fact]
    public void The_container_image_is_built_from_the_official_images_and_runs_unprivileged_with_data_and_keys_apart()
    {
        var dockerfile = File.ReadAllLines(Path.Combine(RepositoryFiles.Root, "Dockerfile"));
        var instructions = dockerfile.Where(line => line.Length > 0 && !line.StartsWith('#')).ToList();

        Assert.All(instructions.Where(line => line.StartsWith("FROM ", StringComparison.Ordinal)),
            from => Assert.StartsWith("FROM mcr.microsoft.com/dotnet/", from));
        Assert.Equal("USER $APP_UID", instructions.Last(line => line.StartsWith("USER ", StringComparison.Ordinal)));
        Assert.Contains(instructions, line => line.Contains("LATCHKEY_Vault__KeyFile=/keys/", StringComparison.Ordinal));
        Assert.Contains(instructions, line => line.Contains("LATCHKEY_Storage__SqlitePath=/data/", StringComparison.Ordinal));
        Assert.Contains("VOLUME [\"/data\", \"/keys\"]", instructions);
        // The same release build as scripts/release.sh.
        var release = File.ReadAllText(Path.Combine(RepositoryFiles.Root, "scripts", "release.sh"));
        Assert.Contains("-p:PublishReadyToRun=true -p:PublishReadyToRunComposite=true", release);
        Assert.Contains(instructions, line => line.Contains("-p:PublishReadyToRun=true -p:PublishReadyToRunComposite=true", StringComparison.Ordinal));
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            throw new InvalidOperationException($"{program} is not installed; on Debian: apt-get install systemd (README, \"Tests\").");
        }
        using var _ = process;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await output + await error);
    }
}

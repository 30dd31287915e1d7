using System.Globalization;
using System.Text.Json;

namespace Latchkey.Bench;

/// <summary>One start-up measurement: hyperfine's numbers over its runs, in seconds.</summary>
internal sealed record StartupResult(string What, double Mean, double StdDev, double Min, double Max, int Runs);

/// <summary>
/// Start-up times with hyperfine (Debian's package): a plain ASP.NET Core app (the ceiling's
/// build) and the built Latchkey server, each from start until its health URL answers
/// (bench/startup/start-until-healthy.sh), and one Latchkey CLI command. Latchkey runs from its
/// native launcher on a SQLite data directory that was set up and served once before, so the
/// measured start is a restart, not the first run's setup.
/// </summary>
internal sealed class StartupBench(BenchOptions options)
{
    public const string PlainApp = "plain ASP.NET Core app, start to healthy";
    public const string Server = "Latchkey server (SQLite), start to ready";
    public const string Cli = "Latchkey CLI, `latchkey keys list`";

    private const string Email = "startup@latchkey.test";

    private string Script(string name) => Path.Combine(options.Root, "bench", "startup", name);

    private string LogDirectory => Path.Combine(options.ResultsDirectory, "logs");

    /// <summary>Measures the three; a measurement that fails is left out and described in <paramref name="problems"/>.</summary>
    public async Task<List<StartupResult>> MeasureAsync(List<string> problems)
    {
        var work = Path.Combine(Path.GetTempPath(), "latchkey-bench-startup-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(work);
        Directory.CreateDirectory(LogDirectory);
        try
        {
            var results = new List<StartupResult>();
            var ceiling = Path.Combine(options.Root, "bench", "Latchkey.Bench.Ceiling", "bin", "Release", "net10.0", "latchkey-bench-ceiling");
            var latchkey = Path.Combine(LatchkeyTarget.BuildDirectory(options), "latchkey");
            var plainEnvironment = new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = "Production" };
            var latchkeyEnvironment = LatchkeyTarget.SqliteEnvironment(work);

            // The data directory: the database created and migrated by the CLI, a key to list, and
            // one untimed start so that the server's own first-run work (signing keys) is done too.
            await RunCliAsync(latchkey, ["users", "create", "--email", Email, "--name", "Startup", "--password-stdin"], latchkeyEnvironment, work,
                "startup-password-0123456789\n");
            await RunCliAsync(latchkey, ["keys", "create", "--user", Email, "--name", "startup", "--scope", "IDENTITY"], latchkeyEnvironment, work);
            var serverPort = ChildProcess.FreePort();
            string[] serve = [latchkey, "serve", "--urls", $"http://127.0.0.1:{serverPort}"];
            var serverCommand = UntilHealthy($"http://127.0.0.1:{serverPort}/readyz", work, "startup-latchkey", serve);
            await FirstStartAsync(serverCommand, latchkeyEnvironment, work);

            var plainPort = ChildProcess.FreePort();
            string[] plain = [ceiling, "--urls", $"http://127.0.0.1:{plainPort}"];
            await AddAsync(results, problems, PlainApp, UntilHealthy($"http://127.0.0.1:{plainPort}/healthz", work, "startup-plain", plain),
                plainEnvironment, work);
            await AddAsync(results, problems, Server, serverCommand, latchkeyEnvironment, work);
            await AddAsync(results, problems, Cli, new Command(string.Join(' ', latchkey, "keys", "list", "--user", Email), null), latchkeyEnvironment, work);
            return results;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>A command for hyperfine, and the pid file of the server it leaves stopping (null for a command that just runs).</summary>
    private sealed record Command(string Text, string? PidFile);

    private Command UntilHealthy(string healthUrl, string work, string name, string[] server)
    {
        var pidFile = Path.Combine(work, name + ".pid");
        var log = Path.Combine(LogDirectory, name + ".log");
        return new Command(string.Join(' ', ["bash", Script("start-until-healthy.sh"), healthUrl, pidFile, log, .. server]), pidFile);
    }

    private async Task FirstStartAsync(Command command, IReadOnlyDictionary<string, string?> environment, string work)
    {
        var parts = command.Text.Split(' ');
        var (exitCode, output, error) = await ChildProcess.RunAsync(parts[0], parts[1..], environment, workingDirectory: work);
        await WaitStoppedAsync(command, environment, work);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"Latchkey's first start for the start-up measurement failed: {error}{output}");
        }
    }

    private async Task WaitStoppedAsync(Command command, IReadOnlyDictionary<string, string?> environment, string work)
    {
        if (command.PidFile is not null)
        {
            await ChildProcess.RunAsync("bash", [Script("wait-stopped.sh"), command.PidFile], environment, workingDirectory: work);
        }
    }

    private async Task AddAsync(List<StartupResult> results, List<string> problems, string what, Command command,
        IReadOnlyDictionary<string, string?> environment, string work)
    {
        var json = Path.Combine(work, "hyperfine.json");
        // No shell between hyperfine and the command (-N); one untimed run first, for the disk cache.
        List<string> arguments = ["-N", "--style", "basic", "--warmup", "1", "--runs", options.StartupRuns.ToString(CultureInfo.InvariantCulture),
            "--export-json", json];
        if (command.PidFile is not null)
        {
            // The previous run's server stops before the next one starts, outside the timing.
            arguments.AddRange(["--prepare", $"bash {Script("wait-stopped.sh")} {command.PidFile}"]);
        }
        arguments.Add(command.Text);
        Console.WriteLine($"[bench] start-up: {what} ({options.StartupRuns} runs)");
        var (exitCode, output, error) = await ChildProcess.RunAsync("hyperfine", arguments, environment, workingDirectory: work);
        await WaitStoppedAsync(command, environment, work);
        if (exitCode != 0 || !File.Exists(json))
        {
            var file = Path.Combine(LogDirectory, "startup-hyperfine.txt");
            await File.AppendAllTextAsync(file, $"{what}: hyperfine {string.Join(' ', arguments)}\n{output}{error}\n");
            problems.Add($"start-up: {what} failed (exit code {exitCode}); hyperfine's output is in {Path.GetRelativePath(options.Root, file)}");
            return;
        }
        using var document = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        var result = document.RootElement.GetProperty("results")[0];
        double Seconds(string name) => result.GetProperty(name) is { ValueKind: JsonValueKind.Number } n ? n.GetDouble() : double.NaN;
        var measured = new StartupResult(what, Seconds("mean"), Seconds("stddev"), Seconds("min"), Seconds("max"), result.GetProperty("times").GetArrayLength());
        Console.WriteLine($"[bench] start-up: {what}: {measured.Mean:0.000} s ± {measured.StdDev:0.000} s (min {measured.Min:0.000}, max {measured.Max:0.000})");
        results.Add(measured);
    }

    private static async Task RunCliAsync(string latchkey, string[] arguments, IReadOnlyDictionary<string, string?> environment, string work, string? stdin = null)
    {
        var (exitCode, output, error) = await ChildProcess.RunAsync(latchkey, arguments, environment, stdin, work);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"latchkey {string.Join(' ', arguments)} failed ({exitCode}): {error}{output}");
        }
    }
}

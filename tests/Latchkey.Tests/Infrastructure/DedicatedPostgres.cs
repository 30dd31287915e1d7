using System.Diagnostics;

namespace Latchkey.Tests.Infrastructure;

/// <summary>
/// A PostgreSQL cluster of a test's own (Debian's packages, on a free loopback port), which the
/// test may stop and start again: the shared server of the run must never be stopped.
/// </summary>
public sealed class DedicatedPostgres : IAsyncDisposable
{
    private readonly string _directory;
    private readonly string _binaries;
    private readonly int _port;

    private DedicatedPostgres(string directory, string binaries, int port)
    {
        _directory = directory;
        _binaries = binaries;
        _port = port;
    }

    public string ConnectionString => $"Host=127.0.0.1;Port={_port};Username=postgres;Database=postgres";

    /// <summary>Whether this machine can run one (the PostgreSQL server package is installed).</summary>
    public static string? Binaries => Directory.Exists("/usr/lib/postgresql")
        ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "initdb")))
            .OrderBy(d => d, StringComparer.Ordinal).LastOrDefault()
        : null;

    public static async Task<DedicatedPostgres> StartAsync()
    {
        var binaries = Binaries ?? throw new InvalidOperationException("PostgreSQL is not installed (apt-get install postgresql).");
        var directory = Directory.CreateTempSubdirectory("latchkey-pg-").FullName;
        var postgres = new DedicatedPostgres(directory, binaries, FreePorts.Next());
        if (Environment.UserName == "root")
        {
            // PostgreSQL refuses to run as root; the package created the postgres account.
            await RunAsync("chown", ["postgres", directory], asPostgres: false);
        }
        await postgres.PgAsync("initdb", ["-D", postgres.DataDirectory, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]);
        await postgres.StartAgainAsync();
        return postgres;
    }

    private string DataDirectory => Path.Combine(_directory, "data");

    public async Task StartAgainAsync()
    {
        var log = Path.Combine(_directory, "server.log");
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await PgAsync("pg_ctl", ["-D", DataDirectory, "-l", log, "-w", "-t", "60", "start",
                    "-o", $"-p {_port} -k {_directory} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c synchronous_commit=off"]);
                return;
            }
            catch (InvalidOperationException) when (attempt < 5 && File.Exists(log) && File.ReadAllText(log).Contains("Address already in use", StringComparison.Ordinal))
            {
                // The port was free when chosen, and while the server was stopped another socket
                // of this busy test run may hold it for a moment: the server must come back on it.
                File.Delete(log);
                await Task.Delay(TimeSpan.FromSeconds(1));
            }
        }
    }

    /// <summary>A fast shutdown: open sessions are ended and the server stops, as in a restart or failover.</summary>
    public Task StopAsync() => PgAsync("pg_ctl", ["-D", DataDirectory, "-m", "fast", "-w", "-t", "60", "stop"]);

    public async ValueTask DisposeAsync()
    {
        try
        {
            await PgAsync("pg_ctl", ["-D", DataDirectory, "-m", "immediate", "-w", "stop"]);
        }
        catch (InvalidOperationException)
        {
            // Already stopped.
        }
        Directory.Delete(_directory, recursive: true);
    }

    private Task PgAsync(string program, string[] arguments) => RunAsync(Path.Combine(_binaries, program), arguments, asPostgres: Environment.UserName == "root");

    private static async Task RunAsync(string program, string[] arguments, bool asPostgres)
    {
        var start = new ProcessStartInfo(asPostgres ? "runuser" : program) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (asPostgres)
        {
            foreach (var argument in new[] { "-u", "postgres", "--", program })
            {
                start.ArgumentList.Add(argument);
            }
        }
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} exited with {process.ExitCode}: {await output}{await error}");
        }
    }
}

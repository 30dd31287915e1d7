using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Latchkey.Bench;

/// <summary>A server the harness started: its output goes to a log file, and it is stopped with the run.</summary>
internal sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;

    public string Name { get; }
    public string LogFile { get; }
    public int Id => _process.Id;

    private ChildProcess(string name, Process process, StreamWriter log, string logFile)
    {
        Name = name;
        _process = process;
        _log = log;
        LogFile = logFile;
    }

    public static ChildProcess Start(string name, string fileName, IEnumerable<string> arguments, IReadOnlyDictionary<string, string?> environment,
        string logDirectory, string? workingDirectory = null)
    {
        var info = StartInfo(fileName, arguments, environment, workingDirectory);
        Directory.CreateDirectory(logDirectory);
        var logFile = Path.Combine(logDirectory, name + ".log");
        var log = new StreamWriter(logFile, append: false) { AutoFlush = true };
        var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        process.OutputDataReceived += (_, e) => Write(log, e.Data);
        process.ErrorDataReceived += (_, e) => Write(log, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new ChildProcess(name, process, log, logFile);
    }

    private static ProcessStartInfo StartInfo(string fileName, IEnumerable<string> arguments, IReadOnlyDictionary<string, string?> environment, string? workingDirectory)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Directory.GetCurrentDirectory(),
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }
        return info;
    }

    private static void Write(StreamWriter log, string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (log)
        {
            log.WriteLine(line);
        }
    }

    /// <summary>Waits until <paramref name="url"/> answers 2xx, or fails with the end of the log.</summary>
    public async Task WaitUntilReadyAsync(string url, TimeSpan timeout)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"{Name} exited with code {_process.ExitCode}. Its log ({LogFile}) ends:\n{Tail()}");
            }
            try
            {
                using var response = await http.GetAsync(url);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }
            await Task.Delay(200);
        }
        throw new TimeoutException($"{Name} did not answer {url} within {timeout.TotalSeconds:0} s. Its log ({LogFile}) ends:\n{Tail()}");
    }

    /// <summary>Resident set size from /proc, in MiB.</summary>
    public double ResidentMegabytes() => StatusMegabytes("VmRSS");

    /// <summary>A memory line of /proc/pid/status (VmRSS, RssAnon, RssFile, ...) in MB.</summary>
    public double StatusMegabytes(string field)
    {
        foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
            {
                var kilobytes = long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
                return kilobytes / 1024.0;
            }
        }
        return double.NaN;
    }

    /// <summary>
    /// The mappings that hold the most resident memory (/proc/pid/smaps), largest first, as
    /// "name MB": what RSS is made of (code images, the double-mapped JIT code, the heaps).
    /// </summary>
    public IReadOnlyList<string> LargestMappings(int count)
    {
        var resident = new Dictionary<string, long>(StringComparer.Ordinal);
        var name = "";
        foreach (var line in File.ReadLines($"/proc/{_process.Id}/smaps"))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length >= 5 && fields[0].Contains('-', StringComparison.Ordinal) && !fields[0].EndsWith(':'))
            {
                name = fields.Length >= 6 ? Path.GetFileName(fields[5]) is { Length: > 0 } file ? file : fields[5] : "[anonymous]";
            }
            else if (fields.Length >= 2 && fields[0] == "Rss:")
            {
                resident[name] = resident.GetValueOrDefault(name) + long.Parse(fields[1], CultureInfo.InvariantCulture);
            }
        }
        return resident.OrderByDescending(pair => pair.Value).Take(count)
            .Select(pair => $"{pair.Key} {pair.Value / 1024.0:0} MB").ToList();
    }

    public string Tail(int lines = 30)
    {
        try
        {
            using var stream = new FileStream(LogFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            return string.Join('\n', reader.ReadToEnd().Split('\n').TakeLast(lines));
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }

    private bool _disposed;

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
        lock (_log)
        {
            _log.Dispose();
        }
    }

    /// <summary>A loopback port that nothing listens on right now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Runs a command to completion and returns its exit code and output.</summary>
    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(string fileName, IEnumerable<string> arguments,
        IReadOnlyDictionary<string, string?>? environment = null, string? stdin = null, string? workingDirectory = null)
    {
        var info = StartInfo(fileName, arguments, environment ?? new Dictionary<string, string?>(), workingDirectory);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
        }
        process.StandardInput.Close();
        await process.WaitForExitAsync();
        return (process.ExitCode, await output, await error);
    }
}

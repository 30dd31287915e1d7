using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Latchkey.Bench;

/// <summary>
/// One wrk run's numbers. <see cref="Starved"/> counts requests that a single-use-token script
/// sent without a token: its file ran out (codes) or a chain broke (refresh).
/// </summary>
internal sealed record LoadResult(long Requests, double Seconds, double RequestsPerSecond, double P50Ms, double P99Ms, long Non2xx, long SocketErrors, string Raw)
{
    public long Errors => Non2xx + SocketErrors;

    public long Starved { get; init; }

    public static LoadResult Failed(string reason) => new(0, 0, 0, double.NaN, double.NaN, 0, 1, reason);
}

/// <summary>
/// Drives load with wrk (Debian's package): one thread, a fixed number of connections, a Lua
/// script from bench/wrk. Every target gets the same generator, connections and duration.
/// </summary>
internal sealed partial class Wrk(BenchOptions options)
{
    private string Script(string name) => Path.Combine(options.Root, "bench", "wrk", name);

    public Task<LoadResult> RunAsync(string url, LoadRequest request, int seconds, CancellationToken stopEarly = default) =>
        RunScriptAsync(url, request.Script, request.Environment(), request.Connections ?? options.Connections, seconds, stopEarly);

    private async Task<LoadResult> RunScriptAsync(string url, string script, IReadOnlyDictionary<string, string> environment, int connections, int seconds, CancellationToken stopEarly)
    {
        var info = new ProcessStartInfo("wrk")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "-t1", $"-c{connections}", $"-d{seconds}s", "--timeout", "10s", "--latency", "-s", Script(script), url })
        {
            info.ArgumentList.Add(argument);
        }
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }
        using var process = Process.Start(info) ?? throw new InvalidOperationException("Could not start wrk.");
        var output = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var error = process.StandardError.ReadToEndAsync(CancellationToken.None);
        // wrk stops early on SIGINT and still prints its statistics.
        await using var interrupt = stopEarly.Register(() => Signal(process.Id));
        await process.WaitForExitAsync(CancellationToken.None);
        var text = await output + await error;
        return process.ExitCode == 0 ? Parse(text) : LoadResult.Failed(text);
    }

    private static void Signal(int pid)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-INT", pid.ToString(CultureInfo.InvariantCulture)]) { UseShellExecute = false });
        kill?.WaitForExit();
    }

    internal static LoadResult Parse(string text)
    {
        var summary = Summary().Match(text);
        var rate = Rate().Match(text);
        if (!summary.Success || !rate.Success)
        {
            return LoadResult.Failed(text);
        }
        var requests = long.Parse(summary.Groups["requests"].Value, CultureInfo.InvariantCulture);
        var seconds = Duration(summary.Groups["seconds"].Value);
        var non2xx = Non2xx().Match(text) is { Success: true } n ? long.Parse(n.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
        long socketErrors = 0;
        if (SocketErrors().Match(text) is { Success: true } s)
        {
            socketErrors = Enumerable.Range(1, 4).Sum(i => long.Parse(s.Groups[i].Value, CultureInfo.InvariantCulture));
        }
        return new LoadResult(requests, seconds, double.Parse(rate.Groups[1].Value, CultureInfo.InvariantCulture),
            Percentile(text, "50"), Percentile(text, "99"), non2xx, socketErrors, text)
        {
            Starved = Starved().Match(text) is { Success: true } t ? long.Parse(t.Groups[1].Value, CultureInfo.InvariantCulture) : 0,
        };
    }

    private static double Percentile(string text, string percent)
    {
        var match = Regex.Match(text, $@"^\s+{percent}(?:\.000)?%\s+([0-9.]+)(us|ms|s|m)\s*$", RegexOptions.Multiline);
        return match.Success ? Milliseconds(match.Groups[1].Value, match.Groups[2].Value) : double.NaN;
    }

    private static double Milliseconds(string value, string unit)
    {
        var number = double.Parse(value, CultureInfo.InvariantCulture);
        return unit switch
        {
            "us" => number / 1000,
            "ms" => number,
            "s" => number * 1000,
            "m" => number * 60_000,
            _ => double.NaN,
        };
    }

    private static double Duration(string text)
    {
        var match = Regex.Match(text, @"^([0-9.]+)(us|ms|s|m)$");
        return match.Success ? Milliseconds(match.Groups[1].Value, match.Groups[2].Value) / 1000 : double.NaN;
    }

    [GeneratedRegex(@"(?<requests>\d+) requests in (?<seconds>[0-9.]+(?:us|ms|s|m)),")]
    private static partial Regex Summary();

    [GeneratedRegex(@"Requests/sec:\s+([0-9.]+)")]
    private static partial Regex Rate();

    [GeneratedRegex(@"Non-2xx or 3xx responses:\s+(\d+)")]
    private static partial Regex Non2xx();

    [GeneratedRegex(@"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")]
    private static partial Regex SocketErrors();

    /// <summary>What refresh.lua and authorization-code.lua report of requests sent without a token.</summary>
    [GeneratedRegex(@"^(?:Broken refresh chains|Requests without a code): (\d+)", RegexOptions.Multiline)]
    private static partial Regex Starved();
}

/// <summary>
/// What wrk sends: one fixed request (request.lua), or requests that each use a single-use token
/// from <see cref="TokensFile"/> once: refresh chains (refresh.lua) or authorization codes
/// (authorization-code.lua). A tokens file serves one wrk run and is deleted after it.
/// </summary>
internal sealed record LoadRequest(string Script, string Method, string? Body, IReadOnlyList<string> Headers, string? TokensFile = null)
{
    /// <summary>Connections for this request alone (latency workloads use one); null: the run's setting.</summary>
    public int? Connections { get; init; }

    public static LoadRequest Get(params string[] headers) => new("request.lua", "GET", null, headers);

    public static LoadRequest PostForm(string body, params string[] headers) =>
        new("request.lua", "POST", body, [.. headers, "Content-Type: application/x-www-form-urlencoded"]);

    public static LoadRequest PostJson(string body, params string[] headers) =>
        new("request.lua", "POST", body, [.. headers, "Content-Type: application/json"]);

    /// <summary>One refresh chain per connection, started from the file's tokens.</summary>
    public static LoadRequest RefreshChain(string tokensFile, params string[] headers) => new("refresh.lua", "POST", null, headers, tokensFile);

    /// <summary>Each request redeems the file's next code; <paramref name="form"/> is the rest of the token request.</summary>
    public static LoadRequest CodeRedemption(string codesFile, string form, params string[] headers) =>
        new("authorization-code.lua", "POST", form, headers, codesFile);

    public IReadOnlyDictionary<string, string> Environment()
    {
        var environment = new Dictionary<string, string>
        {
            ["BENCH_METHOD"] = Method,
            ["BENCH_BODY"] = Body ?? "",
            ["BENCH_HEADERS"] = string.Join('\n', Headers),
        };
        if (TokensFile is not null)
        {
            environment["BENCH_TOKENS"] = TokensFile;
        }
        return environment;
    }

    public static string Basic(string clientId, string secret) =>
        "Authorization: Basic " + Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(
            Uri.EscapeDataString(clientId) + ":" + Uri.EscapeDataString(secret)));
}

using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Latchkey.Bench;

/// <summary>A bar from the benchmark issue, checked against numbers of this run.</summary>
internal sealed record Bar(string Target, string What, string Measured, string Required, bool Met);

/// <summary>Turns a run's measurements into the table, the ratios and the bars.</summary>
internal sealed class BenchReport(BenchOptions options, IReadOnlyList<Measurement> measurements, IReadOnlyDictionary<string, double> facts)
{
    private const string StartMarker = "<!-- bench:results:start -->";
    private const string EndMarker = "<!-- bench:results:end -->";

    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    private double Rate(string target, string workload) =>
        measurements.Where(m => m.Target == target && m.Workload == workload && m.Load.Requests > 0)
            .Select(m => m.Load.RequestsPerSecond).DefaultIfEmpty(double.NaN).Average();

    private double Median(string target, string workload) =>
        measurements.Where(m => m.Target == target && m.Workload == workload && m.Load.Requests > 0)
            .Select(m => m.Load.P50Ms).DefaultIfEmpty(double.NaN).Average();

    /// <summary>The ceiling is measured at the start and the end of the run; the mean is the reference.</summary>
    private double CeilingRate => measurements.Where(m => m.Target == BenchRun.Ceiling && m.Load.Requests > 0)
        .Select(m => m.Load.RequestsPerSecond).DefaultIfEmpty(double.NaN).Average();

    private IEnumerable<string> LatchkeyTargets => measurements.Select(m => m.Target).Distinct()
        .Where(t => t is not BenchRun.Ceiling and not BenchRun.Peer);

    public List<Bar> Bars()
    {
        var bars = new List<Bar>();
        var ceiling = CeilingRate;
        var peerIntrospection = Rate(BenchRun.Peer, Workloads.Introspection);
        var peerIssuance = Rate(BenchRun.Peer, Workloads.ClientCredentials);
        foreach (var target in LatchkeyTargets)
        {
            void Ratio(string what, double value, double reference, double required, string of)
            {
                var ratio = value / reference;
                bars.Add(new Bar(target, what, Format(ratio, of), Format(required, of), ratio >= required));
            }

            var introspection = Rate(target, Workloads.Introspection);
            var issuance = Rate(target, Workloads.ClientCredentials);
            Ratio("introspection", introspection, ceiling, 0.40, "ceiling");
            Ratio("introspection", introspection, peerIntrospection, 3.0, "peer");
            Ratio("GET /me, bearer token", Rate(target, Workloads.MeBearer), ceiling, 0.50, "ceiling");
            Ratio("GET /me, API key", Rate(target, Workloads.MeApiKey), ceiling, 0.50, "ceiling");
            Ratio("client credentials issuance", issuance, peerIssuance, 1.0, "peer");
            Ratio("refresh with rotation", Rate(target, Workloads.Refresh), ceiling, 0.10, "ceiling");
            Ratio("broker access-token read", Rate(target, Workloads.BrokerRead), ceiling, 0.40, "ceiling");
            var overhead = Median(target, Workloads.ToolCallGateway) - Median(target, Workloads.ToolCallDirect);
            bars.Add(new Bar(target, "MCP gateway overhead on a tool call (median)", double.IsNaN(overhead) ? "n/a" : $"{overhead.ToString("0.00", Invariant)} ms",
                "< 1 ms", overhead < 1));
            Ratio($"introspection with {options.ManyTokens:N0} tokens", Rate(target, Workloads.IntrospectionLarge), introspection, 0.80, $"{options.FewTokens:N0} tokens");
            if (facts.TryGetValue($"{target}|cleanup-seconds", out var seconds))
            {
                bars.Add(new Bar(target, $"clean-up of {options.ManyTokens:N0} expired tokens", $"{seconds:0.0} s", "< 60 s", seconds < 60));
            }
            Ratio("issuance during clean-up", Rate(target, Workloads.IssuanceDuringCleanup), issuance, 0.50, "issuance alone");
            if (facts.TryGetValue($"{target}|rss", out var rss))
            {
                bars.Add(new Bar(target, "server memory (RSS) after the run", $"{rss:0} MB", "< 300 MB", rss < 300));
            }
        }
        return bars;
    }

    private static string Format(double ratio, string of) =>
        double.IsNaN(ratio) ? "n/a" : ratio >= 2 ? $"{ratio.ToString("0.0", Invariant)}x {of}" : $"{(ratio * 100).ToString("0", Invariant)}% of {of}";

    public List<string> FailedBars() => Bars().Where(b => !b.Met).Select(b => $"{b.Target}: {b.What} {b.Measured} (needs {b.Required})").ToList();

    /// <summary>What makes the run fail even in smoke mode: a workload that errored or served nothing.</summary>
    public List<string> Errors() => measurements
        .Where(m => m.Load.Requests == 0 || m.Load.Errors > 0)
        .Select(m => m.Load.Requests == 0
            ? $"{m.Target}: {m.Workload} served no requests"
            : $"{m.Target}: {m.Workload} had {m.Load.Non2xx} error answers and {m.Load.SocketErrors} socket errors in {m.Load.Requests} requests")
        .ToList();

    public string Render()
    {
        var text = new StringBuilder();
        text.AppendLine(Invariant, $"Run of {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC{(options.Smoke ? " (smoke mode: timings are not meaningful)" : "")}. {Machine()}");
        text.AppendLine();
        text.AppendLine(Invariant, $"Load: wrk, 1 thread, {options.Connections} connections, {options.DurationSeconds} s per workload after {options.WarmupSeconds} s of warm-up; every target on loopback in this one run.");
        text.AppendLine();
        text.AppendLine("| target | workload | requests/s | p50 | p99 | errors | note |");
        text.AppendLine("|---|---|---:|---:|---:|---:|---|");
        foreach (var m in measurements)
        {
            text.AppendLine(Invariant,
                $"| {m.Target} | {m.Workload} | {m.Load.RequestsPerSecond:0} | {Ms(m.Load.P50Ms)} | {Ms(m.Load.P99Ms)} | {m.Load.Errors} | {m.Note} |");
        }
        text.AppendLine();
        text.AppendLine(Invariant, $"Ceiling: {CeilingRate:0} requests/s (mean of the start and end runs).");
        text.AppendLine();
        text.AppendLine("| target | bar | measured | required | met |");
        text.AppendLine("|---|---|---:|---:|:---:|");
        foreach (var bar in Bars())
        {
            text.AppendLine(Invariant, $"| {bar.Target} | {bar.What} | {bar.Measured} | {bar.Required} | {(bar.Met ? "yes" : "**no**")} |");
        }
        return text.ToString();
    }

    private static string Ms(double ms) => double.IsNaN(ms) ? "-" : ms < 1 ? $"{ms.ToString("0.00", Invariant)} ms" : $"{ms.ToString("0.0", Invariant)} ms";

    private static string Machine()
    {
        var cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
            : null;
        var memory = File.Exists("/proc/meminfo")
            ? File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
            : null;
        var gib = memory is not null && long.TryParse(memory.Split(' ')[0], Invariant, out var kb) ? $"{kb / 1024.0 / 1024.0:0} GiB" : "?";
        return $"Machine: {Environment.ProcessorCount} cores ({cpu ?? "unknown CPU"}), {gib} RAM, {RuntimeInformation.OSDescription}, .NET {Environment.Version}.";
    }

    /// <summary>Replaces the results section of docs/BENCHMARKS.md with this run.</summary>
    public async Task RecordAsync(string file)
    {
        var document = await File.ReadAllTextAsync(file);
        var start = document.IndexOf(StartMarker, StringComparison.Ordinal);
        var end = document.IndexOf(EndMarker, StringComparison.Ordinal);
        if (start < 0 || end < start)
        {
            throw new InvalidOperationException($"{file} has no {StartMarker} ... {EndMarker} section.");
        }
        var updated = document[..(start + StartMarker.Length)] + "\n" + Render() + document[end..];
        await File.WriteAllTextAsync(file, updated);
    }
}

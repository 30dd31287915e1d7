using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Latchkey.Bench;

/// <summary>A bar from the benchmark issue, checked against numbers of this run.</summary>
internal sealed record Bar(string Target, string What, string Measured, string Required, bool Met);

/// <summary>Turns a run's samples into the tables, the per-round ratios and the bars.</summary>
internal sealed class BenchReport(
    BenchOptions options,
    IReadOnlyList<Sample> samples,
    IReadOnlyDictionary<string, double> facts,
    IReadOnlyList<StartupResult> startup,
    IReadOnlyList<string> problems,
    IReadOnlyDictionary<string, IReadOnlyList<(string Series, double Value)>> meters)
{
    private const string StartMarker = "<!-- bench:results:start -->";
    private const string EndMarker = "<!-- bench:results:end -->";

    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;
    private static readonly (string Target, string Workload) CeilingSide = (BenchRun.Ceiling, Workloads.Ceiling);

    private IEnumerable<string> LatchkeyTargets => samples.Select(m => m.Target).Distinct()
        .Where(t => t is not BenchRun.Ceiling and not BenchRun.Peer);

    /// <summary>One side of a comparison, its samples by round (those that served requests).</summary>
    private Dictionary<int, Sample> Rounds(string comparison, (string Target, string Workload) side) =>
        samples.Where(s => s.Comparison == comparison && s.Target == side.Target && s.Workload == side.Workload && s.Load.Requests > 0)
            .ToDictionary(s => s.Round);

    /// <summary>Each round's value of the subject against the reference of the same round.</summary>
    private List<double> PerRound(string comparison, (string Target, string Workload) subject, (string Target, string Workload) reference,
        Func<LoadResult, LoadResult, double> value)
    {
        var theirs = Rounds(comparison, reference);
        return [.. Rounds(comparison, subject).Where(r => theirs.ContainsKey(r.Key)).OrderBy(r => r.Key)
            .Select(r => value(r.Value.Load, theirs[r.Key].Load))];
    }

    /// <summary>Each round's rate of a Latchkey workload over its reference's (the ceiling or the peer).</summary>
    private List<double> RateRatios(string target, string workload, (string Target, string Workload) reference) =>
        PerRound(Comparisons.Of(target, workload), (target, workload), reference, (mine, theirs) => mine.RequestsPerSecond / theirs.RequestsPerSecond);

    private static double Median(IReadOnlyList<double> values)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }
        var sorted = values.Order().ToList();
        var middle = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }

    public List<Bar> Bars()
    {
        var bars = new List<Bar>();
        foreach (var target in LatchkeyTargets)
        {
            void Ratio(string what, IReadOnlyList<double> ratios, double required, string of) =>
                bars.Add(new Bar(target, what, Spread(ratios, of), Format(required, of), Median(ratios) >= required));

            Ratio("introspection", RateRatios(target, Workloads.Introspection, CeilingSide), 0.40, "ceiling");
            Ratio("introspection", RateRatios(target, Workloads.Introspection, (BenchRun.Peer, Workloads.Introspection)), 3.0, "peer");
            Ratio("GET /me, bearer token", RateRatios(target, Workloads.MeBearer, CeilingSide), 0.50, "ceiling");
            Ratio("GET /me, API key", RateRatios(target, Workloads.MeApiKey, CeilingSide), 0.50, "ceiling");
            Ratio("client credentials issuance", RateRatios(target, Workloads.ClientCredentials, (BenchRun.Peer, Workloads.ClientCredentials)), 1.5, "peer");
            Ratio("refresh with rotation", RateRatios(target, Workloads.Refresh, CeilingSide), 0.10, "ceiling");
            Ratio("refresh with rotation", RateRatios(target, Workloads.Refresh, (BenchRun.Peer, Workloads.Refresh)), 1.0, "peer");
            Ratio("authorization-code redemption", RateRatios(target, Workloads.CodeRedemption, CeilingSide), 0.05, "ceiling");
            Ratio("broker access-token read", RateRatios(target, Workloads.BrokerRead, CeilingSide), 0.40, "ceiling");

            var overheads = PerRound(Comparisons.Of(target, Workloads.ToolCallGateway), (target, Workloads.ToolCallGateway),
                (BenchRun.Ceiling, Workloads.ToolCallDirect), (gateway, direct) => gateway.P50Ms - direct.P50Ms);
            var overhead = Median(overheads);
            bars.Add(new Bar(target, "MCP gateway overhead on a tool call (median latency)",
                double.IsNaN(overhead) ? "n/a" : Milliseconds(overhead) + (overheads.Count > 1 ? $" ({Milliseconds(overheads.Min(), unit: false)}–{Milliseconds(overheads.Max())})" : ""),
                "< 1 ms", overhead < 1));

            // Each round's share of the ceiling with the large table over the same round's share with the small one.
            var small = RateRatios(target, Workloads.Introspection, CeilingSide);
            var large = RateRatios(target, Workloads.IntrospectionLarge, CeilingSide);
            Ratio($"introspection with {options.ManyTokens:N0} tokens", [.. large.Zip(small, (l, s) => l / s)], 0.80, $"{options.FewTokens:N0} tokens");

            if (facts.TryGetValue($"{target}|cleanup-seconds", out var seconds))
            {
                var limit = target == LatchkeyTarget.PostgresName ? 30 : 60;
                bars.Add(new Bar(target, $"clean-up of {options.ManyTokens:N0} expired tokens", $"{seconds.ToString("0.0", Invariant)} s", $"< {limit} s", seconds < limit));
            }
            var issuanceAlone = Median([.. samples.Where(s => s.Target == target && s.Workload == Workloads.ClientCredentials && s.Load.Requests > 0)
                .Select(s => s.Load.RequestsPerSecond)]);
            var duringCleanup = samples.FirstOrDefault(s => s.Target == target && s.Workload == Workloads.IssuanceDuringCleanup && s.Load.Requests > 0);
            Ratio("issuance during clean-up", duringCleanup is null ? [] : [duringCleanup.Load.RequestsPerSecond / issuanceAlone], 0.50, "issuance alone (median)");
            if (facts.TryGetValue($"{target}|rss", out var rss))
            {
                bars.Add(new Bar(target, "server memory (RSS) after the run", $"{rss.ToString("0", Invariant)} MB", "< 250 MB", rss < 250));
            }
        }

        // Start-up: absolute times, with the plain app's beside them for scale.
        var plain = startup.FirstOrDefault(r => r.What == StartupBench.PlainApp);
        var besidePlain = plain is null ? "" : $" (plain ASP.NET Core app: {Seconds(plain.Mean)})";
        if (startup.FirstOrDefault(r => r.What == StartupBench.Server) is { } server)
        {
            bars.Add(new Bar(LatchkeyTarget.SqliteName, "server start, to ready" + besidePlain, MeanAndDeviation(server), "< 1.5 s", server.Mean < 1.5));
        }
        if (startup.FirstOrDefault(r => r.What == StartupBench.Cli) is { } cli)
        {
            bars.Add(new Bar(LatchkeyTarget.SqliteName, "CLI command, `latchkey keys list`" + besidePlain, MeanAndDeviation(cli), "< 0.8 s", cli.Mean < 0.8));
        }
        return bars;
    }

    private static string Format(double ratio, string of) =>
        double.IsNaN(ratio) ? "n/a" : ratio >= 2 ? $"{ratio.ToString("0.0", Invariant)}x {of}" : $"{(ratio * 100).ToString("0", Invariant)}% of {of}";

    /// <summary>The median ratio, and the lowest and highest round's in the same unit.</summary>
    private static string Spread(IReadOnlyList<double> ratios, string of)
    {
        var median = Median(ratios);
        if (double.IsNaN(median) || ratios.Count < 2)
        {
            return Format(median, of);
        }
        var range = median >= 2
            ? $"{ratios.Min().ToString("0.0", Invariant)}–{ratios.Max().ToString("0.0", Invariant)}x"
            : $"{(ratios.Min() * 100).ToString("0", Invariant)}–{(ratios.Max() * 100).ToString("0", Invariant)}%";
        return $"{Format(median, of)} ({range})";
    }

    private static string Milliseconds(double ms, bool unit = true) => ms.ToString("0.00", Invariant) + (unit ? " ms" : "");

    private static string Seconds(double seconds) => double.IsNaN(seconds) ? "n/a" : $"{seconds.ToString("0.000", Invariant)} s";

    private static string MeanAndDeviation(StartupResult result) =>
        double.IsNaN(result.StdDev) ? Seconds(result.Mean) : $"{Seconds(result.Mean)} ± {Seconds(result.StdDev)}";

    public List<string> FailedBars() => Bars().Where(b => !b.Met).Select(b => $"{b.Target}: {b.What} {b.Measured} (needs {b.Required})").ToList();

    /// <summary>What makes the run fail even in smoke mode: a sample that errored or served nothing, codes that ran out, a start-up that failed.</summary>
    public List<string> Errors() => [.. samples
        .Where(m => m.Load.Requests == 0 || m.Load.Errors > 0)
        .Select(m => m.Load.Requests == 0
            ? $"{m.Target}: {m.Workload} (round {m.Round}) served no requests"
            : $"{m.Target}: {m.Workload} (round {m.Round}) had {m.Load.Non2xx} error answers and {m.Load.SocketErrors} socket errors in {m.Load.Requests} requests"),
        .. problems];

    public string Render()
    {
        var text = new StringBuilder();
        text.AppendLine(Invariant, $"Run of {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC{(options.Smoke ? " (smoke mode: timings are not meaningful)" : "")}. {Machine()}");
        text.AppendLine();
        text.AppendLine(Invariant,
            $"Load: wrk, 1 thread, {options.Connections} connections (one for the MCP tool calls). Each comparison ran {options.Rounds} round{(options.Rounds == 1 ? "" : "s")}, its targets taking turns; a sample is {options.DurationSeconds} s after {options.SampleWarmupSeconds} s of warm-up, and every target and workload had {options.WarmupSeconds} s of warm-up before its first round. Every target on loopback in this one run.");
        text.AppendLine();
        text.AppendLine("Requests/s is the median of a target's samples (the ceiling's and the peer's over all the comparisons they took part in), " +
                        "with the lowest and highest; p50 and p99 are those of the median sample.");
        text.AppendLine();
        text.AppendLine("| target | workload | samples | requests/s | min–max | p50 | p99 | errors | note |");
        text.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---|");
        static int Rank(string target) => target switch { BenchRun.Ceiling => 0, BenchRun.Peer => 1, _ => 2 };
        foreach (var group in samples.GroupBy(s => (s.Target, s.Workload)).OrderBy(g => Rank(g.Key.Target)))
        {
            var served = group.Where(s => s.Load.Requests > 0).OrderBy(s => s.Load.RequestsPerSecond).ToList();
            var rates = served.Select(s => s.Load.RequestsPerSecond).ToList();
            var middle = served.Count > 0 ? served[(served.Count - 1) / 2].Load : null;
            var range = rates.Count > 1 ? $"{rates.Min().ToString("0", Invariant)}–{rates.Max().ToString("0", Invariant)}" : "";
            var note = group.Select(s => s.Note).FirstOrDefault(n => n is not null);
            text.AppendLine(Invariant,
                $"| {group.Key.Target} | {group.Key.Workload} | {group.Count()} | {Median(rates):0} | {range} | {Ms(middle?.P50Ms ?? double.NaN)} | {Ms(middle?.P99Ms ?? double.NaN)} | {group.Sum(s => s.Load.Errors)} | {note} |");
        }
        text.AppendLine();
        if (startup.Count > 0)
        {
            text.AppendLine(Invariant,
                $"Start-up (hyperfine, {options.StartupRuns} runs each after one untimed run; the servers from start until their health URL answers, polled every 10 ms; Latchkey's SQLite data directory set up and served once before):");
            text.AppendLine();
            text.AppendLine("| command | mean ± σ | min | max |");
            text.AppendLine("|---|---:|---:|---:|");
            foreach (var result in startup)
            {
                text.AppendLine(Invariant, $"| {result.What} | {MeanAndDeviation(result)} | {Seconds(result.Min)} | {Seconds(result.Max)} |");
            }
            text.AppendLine();
        }
        text.AppendLine("Bars are judged on the median of the per-round ratios (each round's Latchkey sample over the same round's reference); " +
                        "the range in brackets is the lowest and highest round.");
        text.AppendLine();
        text.AppendLine("| target | bar | measured: median (min–max) | required | met |");
        text.AppendLine("|---|---|---:|---:|:---:|");
        foreach (var bar in Bars())
        {
            text.AppendLine(Invariant, $"| {bar.Target} | {bar.What} | {bar.Measured} | {bar.Required} | {(bar.Met ? "yes" : "**no**")} |");
        }
        if (meters.Count > 0)
        {
            text.AppendLine();
            text.AppendLine("Latchkey's meters on `/metrics` (the Prometheus listener) after each target's workloads, summed over their labels " +
                            "(histogram buckets left out):");
            text.AppendLine();
            text.AppendLine("| target | series | value |");
            text.AppendLine("|---|---|---:|");
            foreach (var (target, series) in meters)
            {
                foreach (var (name, value) in series)
                {
                    text.AppendLine(Invariant, $"| {target} | `{name}` | {value:0.###} |");
                }
            }
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

using System.Globalization;

namespace Latchkey.Bench;

/// <summary>What to run: the command line of <c>./bench/run.sh</c>.</summary>
internal sealed record BenchOptions
{
    public required string Root { get; init; }
    public bool Smoke { get; init; }

    /// <summary>Measure only what is named by this text (profiling); null: everything.</summary>
    public string? Only { get; init; }

    public bool Includes(string name) => Only is null || name.Contains(Only, StringComparison.OrdinalIgnoreCase);
    public int Rounds { get; init; } = 3;
    public int DurationSeconds { get; init; } = 5;
    public int WarmupSeconds { get; init; } = 8;
    public int Connections { get; init; } = 32;
    public int ManyTokens { get; init; } = 1_000_000;
    public int FewTokens { get; init; } = 1_000;
    public int StartupRuns { get; init; } = 10;
    public string? PostgresConnectionString { get; init; }
    public bool Record { get; init; }

    /// <summary>
    /// The short warm-up before every sample (the long one, <see cref="WarmupSeconds"/>, comes once
    /// per target and workload): the other targets had the cores in between, and a second is enough
    /// to open the connections and get caches and thread pool back to this target.
    /// </summary>
    public int SampleWarmupSeconds { get; init; } = 1;

    public string ResultsDirectory => Path.Combine(Root, "bench", "results");

    public const string Usage = """
        Usage: ./bench/run.sh [--smoke] [--rounds <n>] [--duration <s>] [--warmup <s>] [--connections <n>] [--tokens <n>]
                              [--startup-runs <n>] [--record] [--no-postgres]

          --smoke             a few seconds per workload; fails only if a workload errors, never on timing (CI)
          --rounds <n>        rounds per comparison: the targets of a comparison take turns, one sample each
                              per round, and bars are judged on the median of the per-round ratios (default 3; smoke 1)
          --duration <s>      seconds of measured load per sample (default 5; smoke 2)
          --warmup <s>        seconds of warm-up once per target and workload, before its first round (default 8;
                              smoke 1); every sample also gets 1 s of warm-up of its own
          --connections <n>   concurrent connections, the same for every target (default 32)
          --tokens <n>        stored tokens for the large-table workloads (default 1000000; smoke 20000)
          --startup-runs <n>  hyperfine runs per start-up measurement (default 10; smoke 2)
          --record            write the tables into docs/BENCHMARKS.md
          --no-postgres       run Latchkey on SQLite only
          --only <text>       only the comparisons whose name contains the text (e.g. "refresh"), for profiling;
                              start-up, the large table and the clean-up only when named; not with --record

        Latchkey on PostgreSQL runs when LATCHKEY_BENCH_POSTGRES names a server (run.sh starts a
        throwaway one when Debian's postgresql package is installed).
        """;

    public static BenchOptions Parse(string[] args)
    {
        string? root = null, only = null;
        bool smoke = false, record = false, noPostgres = false;
        int? rounds = null, duration = null, warmup = null, connections = null, tokens = null, startupRuns = null;
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            switch (args[i])
            {
                case "--help" or "-h": throw new HelpRequestedException();
                case "--root": root = Next(); break;
                case "--smoke": smoke = true; break;
                case "--record": record = true; break;
                case "--no-postgres": noPostgres = true; break;
                case "--rounds": rounds = PositiveInt(Next(), "--rounds"); break;
                case "--duration": duration = PositiveInt(Next(), "--duration"); break;
                case "--warmup": warmup = PositiveInt(Next(), "--warmup"); break;
                case "--connections": connections = PositiveInt(Next(), "--connections"); break;
                case "--tokens": tokens = PositiveInt(Next(), "--tokens"); break;
                case "--startup-runs": startupRuns = PositiveInt(Next(), "--startup-runs"); break;
                case "--only": only = Next(); break;
                default: throw new ArgumentException($"Unknown option '{args[i]}'.");
            }
        }
        root ??= Directory.GetCurrentDirectory();
        if (!File.Exists(Path.Combine(root, "Latchkey.slnx")))
        {
            throw new ArgumentException($"'{root}' is not the repository root (no Latchkey.slnx); pass --root.");
        }
        if (only is not null && record)
        {
            throw new ArgumentException("--only measures part of the run, which is not a record: leave out --record.");
        }
        var postgres = Environment.GetEnvironmentVariable("LATCHKEY_BENCH_POSTGRES");
        return new BenchOptions
        {
            Root = Path.GetFullPath(root),
            Smoke = smoke,
            Only = only,
            Record = record,
            Rounds = rounds ?? (smoke ? 1 : 3),
            // 5 s samples keep a full run of both databases (three rounds) around 20 to 25 minutes.
            DurationSeconds = duration ?? (smoke ? 2 : 5),
            // Long enough for tiered compilation to reach optimized code on a busy 2-core machine.
            WarmupSeconds = warmup ?? (smoke ? 1 : 8),
            Connections = connections ?? 32,
            ManyTokens = tokens ?? (smoke ? 20_000 : 1_000_000),
            FewTokens = 1_000,
            StartupRuns = startupRuns ?? (smoke ? 2 : 10),
            PostgresConnectionString = noPostgres || string.IsNullOrWhiteSpace(postgres) ? null : postgres,
        };
    }

    private static int PositiveInt(string value, string option) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : throw new ArgumentException($"{option} takes a positive whole number, not '{value}'.");
}

internal sealed class HelpRequestedException : ArgumentException;

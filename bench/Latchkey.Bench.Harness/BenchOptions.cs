using System.Globalization;

namespace Latchkey.Bench;

/// <summary>What to run: the command line of <c>./bench/run.sh</c>.</summary>
internal sealed record BenchOptions
{
    public required string Root { get; init; }
    public bool Smoke { get; init; }
    public int DurationSeconds { get; init; } = 10;
    public int WarmupSeconds { get; init; } = 2;
    public int Connections { get; init; } = 32;
    public int ManyTokens { get; init; } = 1_000_000;
    public int FewTokens { get; init; } = 1_000;
    public string? PostgresConnectionString { get; init; }
    public bool Record { get; init; }

    public string ResultsDirectory => Path.Combine(Root, "bench", "results");

    public const string Usage = """
        Usage: ./bench/run.sh [--smoke] [--duration <s>] [--connections <n>] [--tokens <n>] [--record] [--no-postgres]

          --smoke            a few seconds per workload; fails only if a workload errors, never on timing (CI)
          --duration <s>     seconds of measured load per workload (default 10; smoke 2)
          --connections <n>  concurrent connections, the same for every target (default 32)
          --tokens <n>       stored tokens for the large-table workloads (default 1000000; smoke 20000)
          --record           write the table into docs/BENCHMARKS.md
          --no-postgres      run Latchkey on SQLite only

        Latchkey on PostgreSQL runs when LATCHKEY_BENCH_POSTGRES names a server (run.sh starts a
        throwaway one when Debian's postgresql package is installed).
        """;

    public static BenchOptions Parse(string[] args)
    {
        string? root = null;
        bool smoke = false, record = false, noPostgres = false;
        int? duration = null, connections = null, tokens = null;
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
                case "--duration": duration = PositiveInt(Next(), "--duration"); break;
                case "--connections": connections = PositiveInt(Next(), "--connections"); break;
                case "--tokens": tokens = PositiveInt(Next(), "--tokens"); break;
                default: throw new ArgumentException($"Unknown option '{args[i]}'.");
            }
        }
        root ??= Directory.GetCurrentDirectory();
        if (!File.Exists(Path.Combine(root, "Latchkey.slnx")))
        {
            throw new ArgumentException($"'{root}' is not the repository root (no Latchkey.slnx); pass --root.");
        }
        var postgres = Environment.GetEnvironmentVariable("LATCHKEY_BENCH_POSTGRES");
        return new BenchOptions
        {
            Root = Path.GetFullPath(root),
            Smoke = smoke,
            Record = record,
            DurationSeconds = duration ?? (smoke ? 2 : 10),
            // Long enough for tiered compilation to reach optimized code on a busy 2-core machine.
            WarmupSeconds = smoke ? 1 : 8,
            Connections = connections ?? 32,
            ManyTokens = tokens ?? (smoke ? 20_000 : 1_000_000),
            FewTokens = 1_000,
            PostgresConnectionString = noPostgres || string.IsNullOrWhiteSpace(postgres) ? null : postgres,
        };
    }

    private static int PositiveInt(string value, string option) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : throw new ArgumentException($"{option} takes a positive whole number, not '{value}'.");
}

internal sealed class HelpRequestedException : ArgumentException;

using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Latchkey.Bench;

/// <summary>One wrk sample of a target's workload, in one round of one comparison.</summary>
internal sealed record Sample(string Comparison, int Round, string Target, string Workload, LoadResult Load, string? Note = null);

/// <summary>
/// One side of a comparison: a target's workload, and the requests for its next wrk runs, given
/// their lengths in seconds (workloads of single-use tokens make fresh ones for every run).
/// </summary>
internal sealed record Contender(string Target, string Workload, string Url, Func<IReadOnlyList<int>, Task<IReadOnlyList<LoadRequest>>> Prepare, string? Note = null)
{
    /// <summary>Told every run's result; false when the run's single-use tokens ran out.</summary>
    public Func<LoadResult, bool> Supplied { get; init; } = _ => true;

    /// <summary>
    /// Prepare a sample's warm-up and measured run each right before it, rather than both before
    /// the warm-up (for tokens that would not outlive the warm-up).
    /// </summary>
    public bool PrepareJustBeforeEachRun { get; init; }

    public static Contender Fixed(string target, string workload, string url, LoadRequest request, string? note = null) =>
        new(target, workload, url, runs => Task.FromResult<IReadOnlyList<LoadRequest>>([.. runs.Select(_ => request)]), note);
}

/// <summary>
/// The whole run: start-up times first, then the ceiling, the peer and each Latchkey target up at
/// once on loopback. Each comparison (a Latchkey workload and what it is judged against) runs in
/// rounds, its targets taking turns within each round, so that the machine's swings reach both
/// sides of every ratio; ratios are taken per round, between samples of this run.
/// </summary>
internal sealed class BenchRun(BenchOptions options) : IAsyncDisposable
{
    public const string Ceiling = "Ceiling (ASP.NET Core)";
    public const string Peer = "Peer (oidc-provider)";
    private const string PeerClientId = "bench-client", PeerSecret = "bench-client-secret-0123456789abcdef";

    private readonly List<IAsyncDisposable> _owned = [];
    private readonly Wrk _wrk = new(options);
    private readonly HashSet<(string Target, string Workload)> _warmedUp = [];
    private readonly HttpClient _http = new();
    public List<Sample> Samples { get; } = [];
    public Dictionary<string, double> Facts { get; } = [];
    public List<StartupResult> Startup { get; } = [];

    /// <summary>Each Latchkey target's meters on <c>/metrics</c> after its workloads: series name and its value summed over label sets.</summary>
    public Dictionary<string, IReadOnlyList<(string Series, double Value)>> Meters { get; } = [];

    /// <summary>What went wrong besides a sample's error answers (codes that ran out, a start-up that failed).</summary>
    public List<string> Problems { get; } = [];

    private string _ceilingUrl = "";
    private Contender? _ceiling;
    private PeerWorkloads? _peer;
    private Contender CeilingContender => _ceiling ?? throw new InvalidOperationException("The ceiling has not started.");
    private PeerWorkloads PeerContenders => _peer ?? throw new InvalidOperationException("The peer has not started.");

    /// <summary>The peer's side of the comparisons that name it.</summary>
    private sealed record PeerWorkloads(Contender Introspection, Contender Issuance, Contender Refresh);

    private string LogDirectory => Path.Combine(options.ResultsDirectory, "logs");

    public async Task<int> ExecuteAsync()
    {
        var started = Stopwatch.StartNew();
        Directory.CreateDirectory(options.ResultsDirectory);
        if (Directory.Exists(LogDirectory))
        {
            Directory.Delete(LogDirectory, recursive: true);
        }
        Say($"Latchkey benchmark ({(options.Smoke ? "smoke" : "full")}): wrk -t1 -c{options.Connections}; {options.Rounds} round(s) per comparison, " +
            $"{options.DurationSeconds} s per sample after {options.SampleWarmupSeconds} s of warm-up ({options.WarmupSeconds} s before a target's first round).");

        // First, while nothing else runs.
        if (options.Includes("start-up"))
        {
            Startup.AddRange(await new StartupBench(options).MeasureAsync(Problems));
        }

        _ceilingUrl = await StartCeilingAsync();
        _ceiling = Contender.Fixed(Ceiling, Workloads.Ceiling, _ceilingUrl + "/introspect",
            LoadRequest.PostForm("token=lk_at_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ&token_type_hint=access_token"));
        _peer = await StartPeerAsync();

        var targets = new List<bool> { false };
        if (options.PostgresConnectionString is not null)
        {
            targets.Add(true);
        }
        else
        {
            Say("PostgreSQL: not measured (LATCHKEY_BENCH_POSTGRES not set).");
        }
        foreach (var postgres in targets)
        {
            await MeasureLatchkeyAsync(postgres);
        }

        var report = new BenchReport(options, Samples, Facts, Startup, Problems, Meters);
        var table = report.Render();
        Console.WriteLine();
        Console.WriteLine(table);
        var file = Path.Combine(options.ResultsDirectory, options.Smoke ? "smoke.md" : "latest.md");
        await File.WriteAllTextAsync(file, table);
        Say($"Written to {Path.GetRelativePath(options.Root, file)} in {started.Elapsed.TotalMinutes:0.0} min; server logs in {Path.GetRelativePath(options.Root, LogDirectory)}.");
        if (options.Record && !options.Smoke)
        {
            await report.RecordAsync(Path.Combine(options.Root, "docs", "BENCHMARKS.md"));
            Say("Recorded in docs/BENCHMARKS.md.");
        }

        var errors = report.Errors();
        foreach (var error in errors)
        {
            Console.Error.WriteLine($"[bench] ERROR: {error}");
        }
        if (errors.Count > 0)
        {
            return 1;
        }
        if (!options.Smoke && report.FailedBars() is { Count: > 0 } failed)
        {
            Console.Error.WriteLine($"[bench] {failed.Count} bar(s) not met: {string.Join("; ", failed)}");
            return 3;
        }
        return 0;
    }

    private static void Say(string message) => Console.WriteLine($"[bench] {message}");

    private async Task<string> StartCeilingAsync()
    {
        var port = ChildProcess.FreePort();
        var dll = Path.Combine(options.Root, "bench", "Latchkey.Bench.Ceiling", "bin", "Release", "net10.0", "latchkey-bench-ceiling.dll");
        var process = ChildProcess.Start("ceiling", "dotnet", [dll, "--urls", $"http://127.0.0.1:{port}"],
            new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = "Production" }, LogDirectory);
        _owned.Add(process);
        var url = $"http://127.0.0.1:{port}";
        await process.WaitUntilReadyAsync(url + "/healthz", TimeSpan.FromSeconds(60));
        Say($"ceiling on {url}");
        return url;
    }

    private async Task<PeerWorkloads> StartPeerAsync()
    {
        var port = ChildProcess.FreePort();
        var peerDirectory = Path.Combine(options.Root, "bench", "peer");
        var process = ChildProcess.Start("peer", "node", [Path.Combine(peerDirectory, "server.mjs"), port.ToString(CultureInfo.InvariantCulture)],
            new Dictionary<string, string?> { ["NODE_ENV"] = "production" }, LogDirectory, peerDirectory);
        _owned.Add(process);
        var url = $"http://127.0.0.1:{port}";
        await process.WaitUntilReadyAsync(url + "/.well-known/openid-configuration", TimeSpan.FromSeconds(60));
        Say($"peer on {url}");

        var basic = LoadRequest.Basic(PeerClientId, PeerSecret);
        using var request = new HttpRequestMessage(HttpMethod.Post, url + "/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = "api" }),
        };
        request.Headers.TryAddWithoutValidation("Authorization", basic["Authorization: ".Length..]);
        using var response = await _http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"The peer refused client credentials: {body}");
        }
        var token = JsonDocument.Parse(body).RootElement.GetProperty("access_token").GetString()!;

        var introspection = Contender.Fixed(Peer, Workloads.Introspection, url + "/token/introspection",
            LoadRequest.PostForm($"token={token}&token_type_hint=access_token", basic));
        var issuance = Contender.Fixed(Peer, Workloads.ClientCredentials, url + "/token",
            LoadRequest.PostForm("grant_type=client_credentials&scope=api", basic));
        // Fresh chains for every run from the peer's bench-only seeding route (bench/peer/server.mjs),
        // made right before the run: the in-memory adapter keeps only its latest 1,000 entries, so
        // tokens seeded before a warm-up would be gone after it.
        var refresh = new Contender(Peer, Workloads.Refresh, url + "/token", async runs =>
        {
            var requests = new List<LoadRequest>();
            foreach (var _ in runs)
            {
                using var seeded = await _http.PostAsync(url + $"/bench/refresh-tokens?count={options.Connections + 1}", null);
                var tokens = JsonSerializer.Deserialize<List<string>>(await seeded.EnsureSuccessStatusCode().Content.ReadAsStringAsync())!;
                requests.Add(LoadRequest.RefreshChain(await TokensFileAsync(tokens), basic));
            }
            return requests;
        }, "each refresh token redeemed once")
        {
            PrepareJustBeforeEachRun = true,
        };
        return new PeerWorkloads(introspection, issuance, refresh);
    }

    /// <summary>A file of single-use tokens for one wrk run (deleted after it).</summary>
    private async Task<string> TokensFileAsync(IEnumerable<string> tokens)
    {
        var file = Path.Combine(options.ResultsDirectory, $"tokens-{Guid.NewGuid():N}.txt");
        await File.WriteAllLinesAsync(file, tokens);
        return file;
    }

    /// <summary>
    /// One comparison: every contender warmed up once per run (the JIT needs it), then
    /// <see cref="BenchOptions.Rounds"/> rounds in which each takes its turn: a short warm-up and
    /// one measured sample.
    /// </summary>
    private async Task CompareAsync(string comparison, params Contender[] contenders)
    {
        if (!options.Includes(comparison))
        {
            return;
        }
        foreach (var contender in contenders)
        {
            if (_warmedUp.Add((contender.Target, contender.Workload)))
            {
                await WarmUpAsync(contender);
            }
        }
        for (var round = 1; round <= options.Rounds; round++)
        {
            foreach (var contender in contenders)
            {
                var result = await SampleAsync(contender);
                if (!contender.Supplied(result))
                {
                    // Once more, with a batch sized from the higher rate this one showed.
                    Say($"r{round} {contender.Target} {contender.Workload}: ran out of single-use tokens ({result.Starved} requests without one); sampling again with more");
                    result = await SampleAsync(contender);
                    if (!contender.Supplied(result))
                    {
                        Problems.Add($"{contender.Target}: {contender.Workload}, round {round}, ran out of single-use tokens twice " +
                                     $"({result.Starved} requests without one), so its rate is not a measurement");
                    }
                }
                Record(new Sample(comparison, round, contender.Target, contender.Workload, result, contender.Note));
            }
        }
    }

    /// <summary>One sample: a short warm-up, then the measured run.</summary>
    private async Task<LoadResult> SampleAsync(Contender contender)
    {
        LoadRequest warmup, measured;
        if (contender.PrepareJustBeforeEachRun)
        {
            warmup = (await contender.Prepare([options.SampleWarmupSeconds]))[0];
            contender.Supplied(await RunAsync(contender.Url, warmup, options.SampleWarmupSeconds));
            measured = (await contender.Prepare([options.DurationSeconds]))[0];
        }
        else
        {
            var requests = await contender.Prepare([options.SampleWarmupSeconds, options.DurationSeconds]);
            (warmup, measured) = (requests[0], requests[1]);
            contender.Supplied(await RunAsync(contender.Url, warmup, options.SampleWarmupSeconds));
        }
        return await RunAsync(contender.Url, measured, options.DurationSeconds);
    }

    /// <summary>The first warm-up; repeated (with a larger batch) while its single-use tokens ran out, to learn the rate.</summary>
    private async Task WarmUpAsync(Contender contender)
    {
        for (var attempt = 1; attempt <= 4; attempt++)
        {
            var requests = await contender.Prepare([options.WarmupSeconds]);
            if (contender.Supplied(await RunAsync(contender.Url, requests[0], options.WarmupSeconds)))
            {
                return;
            }
            Say($"{contender.Target} {contender.Workload}: the warm-up ran out of tokens; again with more");
        }
    }

    private async Task<LoadResult> RunAsync(string url, LoadRequest request, int seconds, CancellationToken stopEarly = default)
    {
        try
        {
            return await _wrk.RunAsync(url, request, seconds, stopEarly);
        }
        finally
        {
            if (request.TokensFile is not null)
            {
                File.Delete(request.TokensFile);
            }
        }
    }

    private void Record(Sample sample)
    {
        Samples.Add(sample);
        var (target, workload, result) = (sample.Target, sample.Workload, sample.Load);
        if (result.Errors > 0 || result.Requests == 0)
        {
            // The whole wrk output, for finding out what went wrong.
            var file = Path.Combine(LogDirectory, $"{Slug(target)}-{Slug(workload)}-{sample.Round}.wrk.txt");
            File.WriteAllText(file, result.Raw);
        }
        Say(result.Requests == 0
            ? $"r{sample.Round} {target,-24} {workload,-34} FAILED: {Shorten(result.Raw)}"
            : $"r{sample.Round} {target,-24} {workload,-34} {result.RequestsPerSecond,8:0} req/s  p50 {result.P50Ms,7:0.00} ms  p99 {result.P99Ms,7:0.00} ms  errors {result.Errors}");
    }

    private static string Slug(string text) =>
        string.Concat(text.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-')).Trim('-');

    private static string Shorten(string text) => text.Length > 400 ? text[..400] + "..." : text;

    private async Task MeasureLatchkeyAsync(bool postgres)
    {
        var work = Path.Combine(Path.GetTempPath(), "latchkey-bench-" + Guid.NewGuid().ToString("N")[..8]);
        var target = await LatchkeyTarget.StartAsync(options, postgres, work);
        _owned.Add(target);
        _owned.Add(new DeleteDirectory(work));
        var name = target.Name;
        Say($"{name} on {target.BaseUrl}; seeding through the CLI and HTTP flows");

        var seeder = new LatchkeySeeder(target);
        var seed = await seeder.SeedAsync();
        var basic = LoadRequest.Basic(seed.ClientId, seed.ClientSecret);
        var url = target.BaseUrl;
        var (ceiling, peer) = (CeilingContender, PeerContenders);

        // Introspection with a small table first: the reference for the large-table run below.
        var expiredAdded = (int)Math.Max(0, options.FewTokens - await target.CountTokensAsync());
        await target.AddExpiredTokensAsync(expiredAdded);
        var introspect = LoadRequest.PostForm($"token={seed.ClientCredentialsToken}&token_type_hint=access_token", basic);
        await CompareAsync(Comparisons.Of(name, Workloads.Introspection), ceiling, peer.Introspection,
            Contender.Fixed(name, Workloads.Introspection, url + "/api/oauth/introspect", introspect, $"{await target.CountTokensAsync():N0} tokens stored"));
        await CompareAsync(Comparisons.Of(name, Workloads.MeBearer), ceiling,
            Contender.Fixed(name, Workloads.MeBearer, url + "/external-api/v1/me", LoadRequest.Get($"Authorization: Bearer {seed.UserAccessToken}")));
        await CompareAsync(Comparisons.Of(name, Workloads.MeApiKey), ceiling,
            Contender.Fixed(name, Workloads.MeApiKey, url + "/external-api/v1/me", LoadRequest.Get($"X-API-Key: {seed.ApiKey}")));
        await CompareAsync(Comparisons.Of(name, Workloads.BrokerRead), ceiling,
            Contender.Fixed(name, Workloads.BrokerRead, url + $"/mcp/credentials/{seed.CredentialId}/access-token", LoadRequest.PostJson("{}", $"X-API-Key: {seed.ApiKey}")));
        if (options.Includes(Workloads.ToolCallGateway))
        {
            await MeasureGatewayAsync(name, await seeder.McpGatewayAsync(seed, _ceilingUrl + "/mcp"), seed.ApiKey);
        }
        var issuance = LoadRequest.PostForm("grant_type=client_credentials&scope=IDENTITY", basic);
        await CompareAsync(Comparisons.Of(name, Workloads.ClientCredentials), peer.Issuance,
            Contender.Fixed(name, Workloads.ClientCredentials, url + "/api/oauth/token", issuance));
        await CompareAsync(Comparisons.Of(name, Workloads.Refresh), ceiling, peer.Refresh, RefreshContender(target, seeder, seed, basic));
        await CompareAsync(Comparisons.Of(name, Workloads.CodeRedemption), ceiling, CodeRedemptionContender(target, seeder, seed, basic));

        // The large table: introspection of the same token, then clean-up under issuance load.
        if (!options.Includes(Workloads.IntrospectionLarge) && !options.Includes(Workloads.IssuanceDuringCleanup))
        {
            await CheckMetricsAsync(target);
            await target.DisposeAsync();
            return;
        }
        var add = options.ManyTokens - expiredAdded;
        Say($"{name}: adding {add:N0} expired tokens");
        var inserting = Stopwatch.StartNew();
        await target.AddExpiredTokensAsync(add, offset: expiredAdded);
        var stored = await target.CountTokensAsync();
        Say($"{name}: {stored:N0} tokens stored ({inserting.Elapsed.TotalSeconds:0} s to insert)");
        await CompareAsync(Comparisons.Of(name, Workloads.IntrospectionLarge), ceiling,
            Contender.Fixed(name, Workloads.IntrospectionLarge, url + "/api/oauth/introspect", introspect, $"{stored:N0} tokens stored"));
        await MeasureCleanupAsync(target, issuance, stored);

        Facts[$"{name}|rss"] = target.Server.ResidentMegabytes();
        Say($"{name}: resident memory after the run {Facts[$"{name}|rss"]:0} MB " +
            $"(anonymous {target.Server.StatusMegabytes("RssAnon"):0} MB, file-backed {target.Server.StatusMegabytes("RssFile"):0} MB, " +
            $"shared {target.Server.StatusMegabytes("RssShmem"):0} MB); largest mappings: {string.Join(", ", target.Server.LargestMappings(6))}");
        await CheckMetricsAsync(target);
        await target.DisposeAsync();
    }

    /// <summary>
    /// Scrapes the server's <c>/metrics</c> after its workloads: Latchkey's meters must be there
    /// (tokens issued and introspections, at least); a run without them fails.
    /// </summary>
    private async Task CheckMetricsAsync(LatchkeyTarget target)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var scraped = await http.GetStringAsync(target.MetricsUrl);
        // "name{labels} value" lines; a histogram's buckets are left out (its _count and _sum say enough here).
        var meters = scraped.Split('\n')
            .Where(line => line.StartsWith("latchkey_", StringComparison.Ordinal) && !line.Contains("_bucket{", StringComparison.Ordinal))
            .Select(line => (Series: line[..line.IndexOfAny(['{', ' '])], Value: double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture)))
            .GroupBy(m => m.Series).Select(g => (Series: g.Key, Value: g.Sum(m => m.Value))).OrderBy(m => m.Series, StringComparer.Ordinal).ToList();
        Meters[target.Name] = meters;
        var families = meters.Select(m => m.Series).ToList();
        Say($"{target.Name}: /metrics after the run has {families.Count} Latchkey series: {string.Join(", ", families)}");
        // Required only of a run whose workloads record them (--only may leave them out).
        foreach (var (required, workload) in new[] { ("latchkey_tokens_issued_total", Workloads.ClientCredentials), ("latchkey_introspections_total", Workloads.Introspection) })
        {
            if (options.Includes(workload) && !families.Contains(required))
            {
                throw new InvalidOperationException($"{target.Name}: {target.MetricsUrl} has no {required} after the workloads.");
            }
        }
    }

    /// <summary>
    /// A tool call to the upstream directly and through the gateway (with a fresh credential put on
    /// it), one connection each, in turns: the difference of the medians is the gateway's overhead.
    /// </summary>
    private async Task MeasureGatewayAsync(string target, string gatewayUrl, string apiKey)
    {
        const string call = """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}""";
        string[] accept = ["Accept: application/json, text/event-stream", "MCP-Protocol-Version: 2025-11-25"];
        await CompareAsync(Comparisons.Of(target, Workloads.ToolCallGateway),
            Contender.Fixed(Ceiling, Workloads.ToolCallDirect, _ceilingUrl + "/mcp",
                LoadRequest.PostJson(call, accept) with { Connections = 1 }, "the upstream alone, one connection"),
            Contender.Fixed(target, Workloads.ToolCallGateway, gatewayUrl,
                LoadRequest.PostJson(call, [.. accept, $"X-API-Key: {apiKey}"]) with { Connections = 1 }, "credential injected, one connection"));
    }

    /// <summary>Fresh chains for every run, each from its own code flow: every refresh token is redeemed once.</summary>
    private Contender RefreshContender(LatchkeyTarget target, LatchkeySeeder seeder, LatchkeySeed seed, string basic) =>
        new(target.Name, Workloads.Refresh, target.BaseUrl + "/api/oauth/token", async runs =>
        {
            var requests = new List<LoadRequest>();
            foreach (var _ in runs)
            {
                // One spare beyond a chain per connection.
                requests.Add(LoadRequest.RefreshChain(await TokensFileAsync(await seeder.RefreshTokensAsync(seed, options.Connections + 1)), basic));
            }
            return requests;
        }, "each refresh token redeemed once");

    /// <summary>Codes made through the authorization endpoint right before each sample (<see cref="AuthorizationCodeBatches"/>).</summary>
    private Contender CodeRedemptionContender(LatchkeyTarget target, LatchkeySeeder seeder, LatchkeySeed seed, string basic)
    {
        var batches = new AuthorizationCodeBatches(options, seeder, seed, TokensFileAsync, basic);
        return new Contender(target.Name, Workloads.CodeRedemption, target.BaseUrl + "/api/oauth/token", batches.PrepareAsync,
            "each code redeemed once, with PKCE")
        {
            Supplied = batches.Observe,
        };
    }

    /// <summary>
    /// <c>latchkey cleanup</c> in its own process while wrk keeps issuing tokens; wrk stops when
    /// the clean-up ends, so its rate is the rate during clean-up.
    /// </summary>
    private async Task MeasureCleanupAsync(LatchkeyTarget target, LoadRequest issuance, long storedBefore)
    {
        using var done = new CancellationTokenSource();
        var load = RunAsync(target.BaseUrl + "/api/oauth/token", issuance, 600, done.Token);
        await Task.Delay(TimeSpan.FromSeconds(1));
        var clock = Stopwatch.StartNew();
        string output;
        try
        {
            output = await target.CliAsync(["cleanup"]);
        }
        finally
        {
            clock.Stop();
            await done.CancelAsync();
        }
        var result = await load;
        var storedAfter = await target.CountTokensAsync();
        Facts[$"{target.Name}|cleanup-seconds"] = clock.Elapsed.TotalSeconds;
        Facts[$"{target.Name}|cleanup-removed"] = storedBefore - storedAfter + result.Requests;
        Record(new Sample(Comparisons.Of(target.Name, Workloads.IssuanceDuringCleanup), 1, target.Name, Workloads.IssuanceDuringCleanup, result,
            $"clean-up took {clock.Elapsed.TotalSeconds:0.0} s: {output.Trim()}"));
    }

    public async ValueTask DisposeAsync()
    {
        for (var i = _owned.Count - 1; i >= 0; i--)
        {
            try
            {
                await _owned[i].DisposeAsync();
            }
            catch (Exception exception) when (exception is IOException or InvalidOperationException)
            {
                Console.Error.WriteLine($"[bench] stopping: {exception.Message}");
            }
        }
        _http.Dispose();
    }

    private sealed class DeleteDirectory(string path) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
            return ValueTask.CompletedTask;
        }
    }
}

internal static class Workloads
{
    public const string Ceiling = "ceiling";
    public const string Introspection = "introspection";
    public const string MeBearer = "GET /me (bearer token)";
    public const string MeApiKey = "GET /me (API key)";
    public const string ClientCredentials = "client credentials (persisted)";
    public const string Refresh = "refresh with rotation";
    public const string CodeRedemption = "authorization-code redemption";
    public const string BrokerRead = "broker access-token read";
    public const string IntrospectionLarge = "introspection, large table";
    public const string IssuanceDuringCleanup = "client credentials during clean-up";
    public const string ToolCallDirect = "MCP tool call, upstream direct";
    public const string ToolCallGateway = "MCP tool call via gateway";
}

/// <summary>A comparison is named by the Latchkey target and workload it judges.</summary>
internal static class Comparisons
{
    public static string Of(string target, string workload) => $"{target}|{workload}";
}

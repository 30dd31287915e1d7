using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Latchkey.Bench;

/// <summary>One measured workload on one target.</summary>
internal sealed record Measurement(string Target, string Workload, LoadResult Load, string? Note = null);

/// <summary>
/// The whole run: the ceiling, the peer and each Latchkey target up at once on loopback; each
/// workload measured in turn with the same wrk settings; ratios taken between numbers of this run.
/// </summary>
internal sealed class BenchRun(BenchOptions options) : IAsyncDisposable
{
    public const string Ceiling = "Ceiling (ASP.NET Core)";
    public const string Peer = "Peer (oidc-provider)";

    private readonly List<IAsyncDisposable> _owned = [];
    private readonly Wrk _wrk = new(options);
    public List<Measurement> Measurements { get; } = [];
    public Dictionary<string, double> Facts { get; } = [];

    private string _ceilingUrl = "";

    private string LogDirectory => Path.Combine(options.ResultsDirectory, "logs");

    public async Task<int> ExecuteAsync()
    {
        var started = Stopwatch.StartNew();
        Directory.CreateDirectory(options.ResultsDirectory);
        if (Directory.Exists(LogDirectory))
        {
            Directory.Delete(LogDirectory, recursive: true);
        }
        Say($"Latchkey benchmark ({(options.Smoke ? "smoke" : "full")}): wrk -t1 -c{options.Connections}, {options.DurationSeconds} s per workload after {options.WarmupSeconds} s of warm-up.");

        var ceiling = await StartCeilingAsync();
        _ceilingUrl = ceiling;
        var peer = await StartPeerAsync();
        await MeasureCeilingAsync(ceiling, "ceiling (start)");
        await MeasurePeerAsync(peer);

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
        await MeasureCeilingAsync(ceiling, "ceiling (end)");

        var report = new BenchReport(options, Measurements, Facts);
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

    private async Task<string> StartPeerAsync()
    {
        var port = ChildProcess.FreePort();
        var peerDirectory = Path.Combine(options.Root, "bench", "peer");
        var process = ChildProcess.Start("peer", "node", [Path.Combine(peerDirectory, "server.mjs"), port.ToString(CultureInfo.InvariantCulture)],
            new Dictionary<string, string?> { ["NODE_ENV"] = "production" }, LogDirectory, peerDirectory);
        _owned.Add(process);
        var url = $"http://127.0.0.1:{port}";
        await process.WaitUntilReadyAsync(url + "/.well-known/openid-configuration", TimeSpan.FromSeconds(60));
        Say($"peer on {url}");
        return url;
    }

    /// <summary>Warm-up (not recorded), then the measured run.</summary>
    private async Task<LoadResult> MeasureAsync(string target, string workload, string url, LoadRequest request, string? note = null)
    {
        await _wrk.RunAsync(url, request, options.WarmupSeconds);
        var result = await _wrk.RunAsync(url, request, options.DurationSeconds);
        Record(target, workload, result, note);
        return result;
    }

    private void Record(string target, string workload, LoadResult result, string? note = null)
    {
        Measurements.Add(new Measurement(target, workload, result, note));
        if (result.Errors > 0 || result.Requests == 0)
        {
            // The whole wrk output, for finding out what went wrong.
            var file = Path.Combine(LogDirectory, $"{Slug(target)}-{Slug(workload)}.wrk.txt");
            File.WriteAllText(file, result.Raw);
        }
        Say(result.Requests == 0
            ? $"{target,-24} {workload,-30} FAILED: {Shorten(result.Raw)}"
            : $"{target,-24} {workload,-30} {result.RequestsPerSecond,10:0} req/s  p50 {result.P50Ms,7:0.00} ms  p99 {result.P99Ms,7:0.00} ms  errors {result.Errors}");
    }

    private static string Slug(string text) =>
        string.Concat(text.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-')).Trim('-');

    private static string Shorten(string text) => text.Length > 400 ? text[..400] + "..." : text;

    private Task<LoadResult> MeasureCeilingAsync(string url, string workload) =>
        MeasureAsync(Ceiling, workload, url + "/introspect",
            LoadRequest.PostForm("token=lk_at_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ&token_type_hint=access_token"));

    private async Task MeasurePeerAsync(string url)
    {
        const string clientId = "bench-client", secret = "bench-client-secret-0123456789abcdef";
        var basic = LoadRequest.Basic(clientId, secret);
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, url + "/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = "api" }),
        };
        request.Headers.TryAddWithoutValidation("Authorization", basic["Authorization: ".Length..]);
        using var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"The peer refused client credentials: {body}");
        }
        var token = JsonDocument.Parse(body).RootElement.GetProperty("access_token").GetString()!;

        await MeasureAsync(Peer, Workloads.Introspection, url + "/token/introspection",
            LoadRequest.PostForm($"token={token}&token_type_hint=access_token", basic));
        await MeasureAsync(Peer, Workloads.ClientCredentials, url + "/token",
            LoadRequest.PostForm("grant_type=client_credentials&scope=api", basic));
    }

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

        // Introspection with a small table first: the reference for the large-table run below.
        var expiredAdded = (int)Math.Max(0, options.FewTokens - await target.CountTokensAsync());
        await target.AddExpiredTokensAsync(expiredAdded);
        var introspect = LoadRequest.PostForm($"token={seed.ClientCredentialsToken}&token_type_hint=access_token", basic);
        await MeasureAsync(name, Workloads.Introspection, url + "/api/oauth/introspect", introspect,
            $"{await target.CountTokensAsync():N0} tokens stored");
        await MeasureAsync(name, Workloads.MeBearer, url + "/external-api/v1/me", LoadRequest.Get($"Authorization: Bearer {seed.UserAccessToken}"));
        await MeasureAsync(name, Workloads.MeApiKey, url + "/external-api/v1/me", LoadRequest.Get($"X-API-Key: {seed.ApiKey}"));
        await MeasureAsync(name, Workloads.BrokerRead, url + $"/mcp/credentials/{seed.CredentialId}/access-token",
            LoadRequest.PostJson("{}", $"X-API-Key: {seed.ApiKey}"));
        await MeasureGatewayAsync(name, await seeder.McpGatewayAsync(seed, _ceilingUrl + "/mcp"), seed.ApiKey);
        var issuance = LoadRequest.PostForm("grant_type=client_credentials&scope=IDENTITY", basic);
        await MeasureAsync(name, Workloads.ClientCredentials, url + "/api/oauth/token", issuance);
        await MeasureRefreshAsync(target, seeder, seed, basic);

        // The large table: introspection of the same token, then clean-up under issuance load.
        var add = options.ManyTokens - expiredAdded;
        Say($"{name}: adding {add:N0} expired tokens");
        var inserting = Stopwatch.StartNew();
        await target.AddExpiredTokensAsync(add, offset: expiredAdded);
        var stored = await target.CountTokensAsync();
        Say($"{name}: {stored:N0} tokens stored ({inserting.Elapsed.TotalSeconds:0} s to insert)");
        await MeasureAsync(name, Workloads.IntrospectionLarge, url + "/api/oauth/introspect", introspect, $"{stored:N0} tokens stored");
        await MeasureCleanupAsync(target, issuance, stored);

        Facts[$"{name}|rss"] = target.Server.ResidentMegabytes();
        Say($"{name}: resident memory after the run {Facts[$"{name}|rss"]:0} MB " +
            $"(anonymous {target.Server.StatusMegabytes("RssAnon"):0} MB, file-backed {target.Server.StatusMegabytes("RssFile"):0} MB)");
        await target.DisposeAsync();
    }

    /// <summary>
    /// A tool call to the upstream directly and through the gateway (with a fresh credential put on
    /// it), one connection each, side by side: the difference of the medians is the gateway's overhead.
    /// </summary>
    private async Task MeasureGatewayAsync(string target, string gatewayUrl, string apiKey)
    {
        const string call = """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}""";
        string[] accept = ["Accept: application/json, text/event-stream", "MCP-Protocol-Version: 2025-11-25"];
        await MeasureAsync(target, Workloads.ToolCallDirect, _ceilingUrl + "/mcp",
            LoadRequest.PostJson(call, accept) with { Connections = 1 }, "the upstream alone, one connection");
        await MeasureAsync(target, Workloads.ToolCallGateway, gatewayUrl,
            LoadRequest.PostJson(call, [.. accept, $"X-API-Key: {apiKey}"]) with { Connections = 1 }, "credential injected, one connection");
    }

    private async Task MeasureRefreshAsync(LatchkeyTarget target, LatchkeySeeder seeder, LatchkeySeed seed, string basic)
    {
        var file = Path.Combine(options.ResultsDirectory, "refresh-tokens.txt");
        try
        {
            // Fresh chains for the warm-up and for the measured run: every token is redeemed once.
            // One spare: wrk calls request() once at start-up to check the script, without sending it.
            await File.WriteAllLinesAsync(file, await seeder.RefreshTokensAsync(seed, options.Connections + 1));
            await _wrk.RunAsync(target.BaseUrl + "/api/oauth/token", LoadRequest.RefreshChain(file, basic), options.WarmupSeconds);
            await File.WriteAllLinesAsync(file, await seeder.RefreshTokensAsync(seed, options.Connections + 1));
            var result = await _wrk.RunAsync(target.BaseUrl + "/api/oauth/token", LoadRequest.RefreshChain(file, basic), options.DurationSeconds);
            Record(target.Name, Workloads.Refresh, result, "each refresh token redeemed once");
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>
    /// <c>latchkey cleanup</c> in its own process while wrk keeps issuing tokens; wrk stops when
    /// the clean-up ends, so its rate is the rate during clean-up.
    /// </summary>
    private async Task MeasureCleanupAsync(LatchkeyTarget target, LoadRequest issuance, long storedBefore)
    {
        using var done = new CancellationTokenSource();
        var load = _wrk.RunAsync(target.BaseUrl + "/api/oauth/token", issuance, 600, done.Token);
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
        Record(target.Name, Workloads.IssuanceDuringCleanup, result,
            $"clean-up took {clock.Elapsed.TotalSeconds:0.0} s: {output.Trim()}");
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
    public const string Introspection = "introspection";
    public const string MeBearer = "GET /me (bearer token)";
    public const string MeApiKey = "GET /me (API key)";
    public const string ClientCredentials = "client credentials (persisted)";
    public const string Refresh = "refresh with rotation";
    public const string BrokerRead = "broker access-token read";
    public const string IntrospectionLarge = "introspection, large table";
    public const string IssuanceDuringCleanup = "client credentials during clean-up";
    public const string ToolCallDirect = "MCP tool call, upstream direct";
    public const string ToolCallGateway = "MCP tool call via gateway";
}

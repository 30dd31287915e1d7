using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Latchkey.Tests.Fuzz;

/// <summary>
/// Thousands of malformed requests over every operation of the OpenAPI document and every OAuth
/// endpoint named by discovery. Whatever the input: no 5xx, no known secret in any response, no
/// response that repeats more than a short prefix of a long value it was sent, and a rejected
/// (4xx) request leaves the stored data as it was. Seeded, so a failure replays:
/// <c>LATCHKEY_FUZZ_SEED</c> picks the seed, <c>LATCHKEY_FUZZ_REQUESTS</c> the number of requests.
/// </summary>
public abstract class FuzzCampaignTests(LatchkeyServerFixture server, ITestOutputHelper output) : IAsyncLifetime
{
    public const int DefaultRequests = 2500;
    public const int DefaultSeed = 20260808;
    private const int MaxReportedFailures = 30;

    private LoopbackPeers _peers = null!;

    public async Task InitializeAsync() => _peers = await LoopbackPeers.StartAsync();

    public async Task DisposeAsync() => await _peers.DisposeAsync();

    [Fact]
    public async Task Malformed_requests_never_get_a_5xx_never_see_a_secret_or_their_input_echoed_and_never_change_data_when_rejected()
    {
        var requests = EnvironmentNumber("LATCHKEY_FUZZ_REQUESTS", DefaultRequests);
        var seed = EnvironmentNumber("LATCHKEY_FUZZ_SEED", DefaultSeed);
        var world = await FuzzWorld.CreateAsync(server, _peers.Provider, _peers.Upstream);
        var targets = await TargetsAsync();
        var generator = new MalformedRequestGenerator(new Random(seed), world);
        await using var fingerprint = await DatabaseFingerprint.OpenAsync(server);
        var baseline = await fingerprint.TakeAsync();

        var tallies = targets.ToDictionary(t => t.Name, _ => new SortedDictionary<string, int>(StringComparer.Ordinal));
        var failures = new List<string>();
        var failuresPerKind = new Dictionary<string, int>();
        var clock = Stopwatch.StartNew();
        for (var index = 0; index < requests; index++)
        {
            var target = targets[index % targets.Count];
            var mutations = new List<string>();
            var request = generator.Next(target, mutations);

            void Fail(string kind, string detail, RawResponse? response)
            {
                var key = $"{kind} {target.Name}";
                failuresPerKind[key] = failuresPerKind.GetValueOrDefault(key) + 1;
                if (failuresPerKind[key] <= 2 && failures.Count < MaxReportedFailures)
                {
                    failures.Add($"""
                        --- {kind} on {target.Name} (seed {seed}, request #{index}, mutations: {string.Join("; ", mutations)})
                        {detail}
                        request:
                        {request.Describe()}
                        response: {response?.Status} {Shorten(response?.BodyText ?? "", 600)}
                        """);
                }
            }

            RawResponse response;
            try
            {
                response = await RawHttpClient.SendAsync(server.BaseAddress, request);
            }
            catch (Exception error) when (error is IOException or System.Net.Sockets.SocketException or OperationCanceledException)
            {
                // The server may drop a connection it cannot parse (Kestrel does for some malformed heads);
                // counted, and the server must still be healthy at the end.
                Count(tallies, target, "no response");
                if (error is OperationCanceledException)
                {
                    Fail("timeout", error.Message, null);
                }
                continue;
            }
            Count(tallies, target, response.Status.ToString(CultureInfo.InvariantCulture));

            if (response.Status >= 500)
            {
                Fail("5xx", $"status {response.Status}", response);
            }
            var leaked = LeakedSecrets(world, target, response);
            if (leaked.Count > 0)
            {
                Fail("secret in response", "leaked: " + string.Join(", ", leaked), response);
            }
            if (EchoedInput(request, response) is { } echoed)
            {
                Fail("input echoed", echoed, response);
            }

            var after = await fingerprint.TakeAsync();
            if (response.Status is >= 400 and < 500)
            {
                var changed = DatabaseFingerprint.Differences(baseline, after);
                if (changed.Count > 0)
                {
                    Fail("data changed by a rejected request", "changed tables: " + string.Join(", ", changed), response);
                }
            }
            else if (response.Status is >= 200 and < 300)
            {
                RememberIssuedTokens(world, target, response);
            }
            baseline = after;
        }
        clock.Stop();

        Report(requests, seed, clock.Elapsed, tallies);
        using var health = await server.CreateClient().GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.True(failures.Count == 0, $"{failuresPerKind.Values.Sum()} failures ({string.Join(", ", failuresPerKind.Select(f => $"{f.Key}: {f.Value}"))}):\n{string.Join("\n", failures)}");
    }

    /// <summary>
    /// Known secrets in the response's headers or body. The one exception is the endpoint that
    /// exists to hand out a stored credential's current provider token.
    /// </summary>
    private static List<string> LeakedSecrets(FuzzWorld world, FuzzTarget target, RawResponse response)
    {
        var text = new StringBuilder();
        foreach (var (name, value) in response.Headers)
        {
            text.Append(name).Append(": ").Append(value).Append('\n');
        }
        text.Append(response.BodyText);
        var handsOutProviderToken = response.Status is >= 200 and < 300 && target.PathTemplate == "/mcp/credentials/{id}/access-token";
        return [.. world.Secrets.FoundIn(text.ToString(), what => handsOutProviderToken && what.Contains("provider access token", StringComparison.Ordinal))];
    }

    /// <summary>A run of one character at least this long in a request is a long value (the generator's huge path segments, fields and headers).</summary>
    private const int LongInputRun = 1000;

    /// <summary>More of such a run than this in the answer is an echo of more than a prefix (InputEcho quotes 64 characters).</summary>
    private const int MaxEchoedRun = 2 * Latchkey.Common.InputEcho.MaxLength;

    /// <summary>
    /// What a response repeats of a long value the request's fields carried, or null. The long
    /// values the generator makes are runs of one character; the answer is searched as sent and, when it is
    /// JSON, with its strings decoded (an escaped "\u00e9" run is still the run).
    /// </summary>
    private static string? EchoedInput(RawRequest request, RawResponse response)
    {
        // The fields: path, query and body. Headers are left out: the Host header is the server's
        // address in the URLs it answers with (issuer, gateway and metadata URLs) by design.
        var longRuns = RunsOfAtLeast(request.Target + "\n" + Encoding.UTF8.GetString(request.Body), LongInputRun);
        if (longRuns.Count == 0)
        {
            return null;
        }
        var answer = new StringBuilder(response.BodyText);
        foreach (var (name, value) in response.Headers)
        {
            answer.Append('\n').Append(name).Append(": ").Append(value);
        }
        try
        {
            using var json = JsonDocument.Parse(response.Body);
            AppendStrings(json.RootElement, answer);
        }
        catch (JsonException)
        {
        }
        var text = answer.ToString();
        foreach (var c in longRuns)
        {
            if (text.Contains(new string(c, MaxEchoedRun + 1), StringComparison.Ordinal))
            {
                return $"the response repeats more than {MaxEchoedRun} of a run of '{c}' (U+{(int)c:X4}) the request carried";
            }
        }
        return null;
    }

    private static HashSet<char> RunsOfAtLeast(string text, int length)
    {
        var found = new HashSet<char>();
        for (int start = 0, end; start < text.Length; start = end)
        {
            for (end = start + 1; end < text.Length && text[end] == text[start]; end++)
            {
            }
            if (end - start >= length)
            {
                found.Add(text[start]);
            }
        }
        return found;
    }

    private static void AppendStrings(JsonElement element, StringBuilder text)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                text.Append('\n').Append(element.GetString());
                break;
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    text.Append('\n').Append(property.Name);
                    AppendStrings(property.Value, text);
                }
                break;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    AppendStrings(item, text);
                }
                break;
        }
    }

    /// <summary>
    /// Tokens a successful token request issued become known secrets; a successful refresh
    /// replaces the refresh token the campaign sends, since sending a redeemed one again
    /// revokes the grant (reuse detection), a change the rejection is meant to make.
    /// </summary>
    private static void RememberIssuedTokens(FuzzWorld world, FuzzTarget target, RawResponse response)
    {
        if (!target.PathTemplate.EndsWith("/token", StringComparison.Ordinal))
        {
            return;
        }
        try
        {
            using var body = JsonDocument.Parse(response.Body);
            if (body.RootElement.TryGetProperty("refresh_token", out var refresh) && refresh.GetString() is { } refreshToken)
            {
                world.RefreshToken = refreshToken;
                world.Secrets.Add($"issued refresh token {refreshToken[..12]}", refreshToken);
            }
            if (body.RootElement.TryGetProperty("access_token", out var access) && access.GetString() is { } accessToken)
            {
                world.Secrets.Add($"issued access token {accessToken[..12]}", accessToken);
            }
        }
        catch (JsonException)
        {
        }
    }

    /// <summary>Every path and method of the OpenAPI document, and every endpoint discovery names.</summary>
    private async Task<List<FuzzTarget>> TargetsAsync()
    {
        var client = server.CreateClient();
        var targets = new Dictionary<string, FuzzTarget>(StringComparer.Ordinal);
        void Add(FuzzTarget target) => targets.TryAdd(target.Name, target);

        using var openApi = JsonDocument.Parse(await client.GetStringAsync("/openapi/v1.json"));
        foreach (var path in openApi.RootElement.GetProperty("paths").EnumerateObject())
        {
            foreach (var operation in path.Value.EnumerateObject().Where(o => o.Name is "get" or "post" or "put" or "patch" or "delete"))
            {
                var method = operation.Name.ToUpperInvariant();
                var content = operation.Value.TryGetProperty("requestBody", out var requestBody) ? requestBody.GetProperty("content").EnumerateObject().Select(c => c.Name).ToList() : [];
                var body = content.Any(c => c.StartsWith("image/", StringComparison.Ordinal)) ? BodyShape.Image
                    : content.Count > 0 || method is "POST" or "PUT" or "PATCH" ? BodyShape.Json
                    : BodyShape.None;
                var security = operation.Value.TryGetProperty("security", out var requirements)
                    ? requirements.EnumerateArray().SelectMany(r => r.EnumerateObject().Select(s => s.Name)).ToList()
                    : [];
                var auth = security.Contains("Session") ? CallerAuth.Session
                    : security.Contains("ApiKey") || path.Name.EndsWith("/mcp", StringComparison.Ordinal) && path.Name.StartsWith("/mcp/", StringComparison.Ordinal) ? CallerAuth.ApiKey
                    : path.Name.EndsWith("/register", StringComparison.Ordinal) ? CallerAuth.Bearer
                    : CallerAuth.None;
                var query = operation.Value.TryGetProperty("parameters", out var parameters)
                    ? parameters.EnumerateArray().Where(p => p.GetProperty("in").GetString() == "query").Select(p => p.GetProperty("name").GetString()!).ToList()
                    : [];
                Add(new FuzzTarget(method, path.Name, body, auth, query));
            }
        }
        // Served but left out of the document: an app's logo (an image, not an API).
        Add(new FuzzTarget("GET", "/api/oauth/apps/{clientId}/logo", BodyShape.None, CallerAuth.None, []));

        foreach (var discovery in new[] { "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server" })
        {
            Add(new FuzzTarget("GET", discovery, BodyShape.None, CallerAuth.None, []));
            using var metadata = JsonDocument.Parse(await client.GetStringAsync(discovery));
            foreach (var property in metadata.RootElement.EnumerateObject().Where(p => p.Name.EndsWith("_endpoint", StringComparison.Ordinal) || p.Name == "jwks_uri"))
            {
                var path = new Uri(property.Value.GetString()!).AbsolutePath;
                switch (property.Name)
                {
                    case "authorization_endpoint":
                    case "end_session_endpoint":
                        Add(new FuzzTarget("GET", path, BodyShape.Form, CallerAuth.None, []));
                        Add(new FuzzTarget("POST", path, BodyShape.Form, CallerAuth.None, []));
                        break;
                    case "userinfo_endpoint":
                        Add(new FuzzTarget("GET", path, BodyShape.Form, CallerAuth.Bearer, []));
                        Add(new FuzzTarget("POST", path, BodyShape.Form, CallerAuth.Bearer, []));
                        break;
                    case "registration_endpoint":
                        Add(new FuzzTarget("POST", path, BodyShape.Json, CallerAuth.Bearer, []));
                        break;
                    case "jwks_uri":
                        Add(new FuzzTarget("GET", path, BodyShape.None, CallerAuth.None, []));
                        break;
                    default:
                        Add(new FuzzTarget("POST", path, BodyShape.Form, CallerAuth.OAuthClient, []));
                        break;
                }
            }
        }
        Assert.True(targets.Count > 40, $"Only {targets.Count} operations found.");
        return [.. targets.Values.OrderBy(t => t.Name, StringComparer.Ordinal)];
    }

    private void Report(int requests, int seed, TimeSpan elapsed, Dictionary<string, SortedDictionary<string, int>> tallies)
    {
        var byStatusClass = tallies.Values.SelectMany(t => t).GroupBy(s => s.Key.Length == 3 ? s.Key[0] + "xx" : s.Key).OrderBy(g => g.Key)
            .Select(g => $"{g.Key}: {g.Sum(s => s.Value)}");
        output.WriteLine($"Fuzz campaign on {server.Provider}: seed {seed}, {requests} requests over {tallies.Count} operations in {elapsed.TotalSeconds:F1} s; {string.Join(", ", byStatusClass)}");
        foreach (var (target, statuses) in tallies)
        {
            output.WriteLine($"  {target,-70} {string.Join(" ", statuses.Select(s => $"{s.Key}x{s.Value}"))}");
        }
    }

    private static void Count(Dictionary<string, SortedDictionary<string, int>> tallies, FuzzTarget target, string outcome) =>
        tallies[target.Name][outcome] = tallies[target.Name].GetValueOrDefault(outcome) + 1;

    private static int EnvironmentNumber(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), CultureInfo.InvariantCulture, out var value) && value > 0 ? value : fallback;

    private static string Shorten(string value, int max) => value.Length <= max ? value : value[..max] + "…";
}

public sealed class FuzzCampaignTestsOnSqlite(SqliteServer server, ITestOutputHelper output) : FuzzCampaignTests(server, output), IClassFixture<SqliteServer>;

public sealed class FuzzCampaignTestsOnPostgres(PostgresServer server, ITestOutputHelper output) : FuzzCampaignTests(server, output), IClassFixture<PostgresServer>;

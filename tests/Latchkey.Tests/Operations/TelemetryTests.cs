using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using static Latchkey.Tests.Infrastructure.OAuthClient;

namespace Latchkey.Tests.Operations;

/// <summary>
/// Metrics on Prometheus's scrape endpoint (a listener of its own) and traces over OTLP to a
/// collector on loopback: Latchkey's meters and the framework's, traces named by client and user,
/// and never a token in either.
/// </summary>
public abstract class TelemetryTests(LatchkeyServerFixture server, TelemetryEndpoints endpoints)
{
    [Fact]
    public async Task Prometheus_scrapes_Latchkeys_meters_on_their_own_listener_and_the_public_one_has_no_metrics()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner, ["IDENTITY"]);
        using var issued = JsonDocument.Parse(await (await ClientCredentialsAsync(server, app, "IDENTITY")).Content.ReadAsStringAsync());
        var token = issued.RootElement.GetProperty("access_token").GetString()!;
        await IntrospectAsync(server.CreateClient(), app, token);

        using var scraper = new HttpClient();
        var scraped = await scraper.GetStringAsync($"http://127.0.0.1:{endpoints.PrometheusPort}/metrics");

        Assert.Matches($@"latchkey_tokens_issued_total\{{[^}}]*client_id=""{app.ClientId}""[^}}]*grant_type=""client_credentials""[^}}]*\}} 1", scraped);
        Assert.Matches($@"latchkey_introspections_total\{{[^}}]*active=""true""[^}}]*client_id=""{app.ClientId}""[^}}]*\}} 1", scraped);
        Assert.Matches(@"latchkey_approvals_pending\{[^}]*\} \d+", scraped);
        Assert.Matches(@"latchkey_audit_queue_depth\{[^}]*log=""SecurityEvent""[^}]*\} \d+", scraped);
        // The framework's own: requests, the runtime.
        Assert.Contains("http_server_request_duration_seconds_bucket{", scraped);
        Assert.Contains("dotnet_gc_", scraped);
        Assert.DoesNotContain(token, scraped);
        Assert.DoesNotContain(app.ClientSecret!, scraped);

        Assert.Equal(HttpStatusCode.NotFound, (await server.CreateClient().GetAsync("/metrics")).StatusCode);

        // A command run beside the server, with the same settings, leaves the scrape port to it.
        var command = await server.RunCliAsync(["keys", "list", "--user", owner.Email]);
        Assert.True(command.ExitCode == 0, command.Error);
        Assert.Contains("latchkey_tokens_issued_total", await scraper.GetStringAsync($"http://127.0.0.1:{endpoints.PrometheusPort}/metrics"));
    }

    [Fact]
    public async Task Traces_go_to_the_collector_named_by_client_and_user_without_a_token()
    {
        var tokens = await IssueAsync(server);
        var accessToken = tokens.Tokens.GetProperty("access_token").GetString()!;
        var refreshToken = tokens.Tokens.TryGetProperty("refresh_token", out var refresh) ? refresh.GetString()! : accessToken;
        var userId = await server.WithDbAsync(db => db.Users.Where(u => u.Email == tokens.User.Email).Select(u => u.Id).SingleAsync());
        var api = server.CreateClient();
        api.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", accessToken);
        Assert.Equal(HttpStatusCode.OK, (await api.GetAsync("/external-api/v1/me")).StatusCode);

        Assert.True(server.Services.GetRequiredService<TracerProvider>().ForceFlush(10_000));
        // Prometheus's reader is pulled, not flushed (so this answers false); the OTLP reader exports now.
        server.Services.GetRequiredService<MeterProvider>().ForceFlush(10_000);

        var traces = endpoints.Received("/v1/traces");
        Assert.Contains("latchkey.client_id", traces);
        Assert.Contains(tokens.App.ClientId, traces);
        Assert.Contains("enduser.id", traces);
        Assert.Contains(userId, traces);
        Assert.Contains("/external-api/v1/me", traces);
        await Eventually.TrueAsync(() => Task.FromResult(endpoints.Received("/v1/metrics").Contains("latchkey.tokens.issued", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(10), "the collector receives Latchkey's meters");
        foreach (var secret in new[] { accessToken, refreshToken, tokens.App.ClientSecret!, tokens.User.Password })
        {
            Assert.DoesNotContain(secret, traces);
        }
    }
}

/// <summary>The dashboard, the alerts and the operations guide shipped in docs/ name Latchkey's meters as Prometheus shows them.</summary>
public sealed partial class TelemetryDocumentationTests(TelemetrySqliteServer server) : IClassFixture<TelemetrySqliteServer>
{
    [Fact]
    public void Every_latchkey_metric_the_docs_name_is_one_Latchkey_publishes()
    {
        // Latchkey's instruments as Prometheus names them: dots to underscores, the unit, _total on counters.
        var published = new HashSet<string>(StringComparer.Ordinal);
        using (var listener = new System.Diagnostics.Metrics.MeterListener())
        {
            listener.InstrumentPublished = (instrument, _) =>
            {
                if (instrument.Meter.Name == Latchkey.Features.Telemetry.LatchkeyMetrics.MeterName)
                {
                    var name = instrument.Name.Replace('.', '_') + (instrument.Unit == "s" ? "_seconds" : "");
                    published.Add(instrument.GetType().Name.StartsWith("Counter", StringComparison.Ordinal) ? name + "_total" : name);
                }
            };
            listener.Start();
        }
        Assert.NotNull(server.Services);
        Assert.True(published.Contains("latchkey_approvals_pending"), string.Join(", ", published));

        foreach (var document in new[] { "docs/grafana/latchkey-dashboard.json", "docs/prometheus/latchkey-alerts.yml", "docs/operations.md" })
        {
            var text = File.ReadAllText(Path.Combine(RepositoryFiles.Root, document));
            var named = MetricName().Matches(text).Select(m => m.Value).Distinct().ToList();
            Assert.NotEmpty(named);
            foreach (var name in named)
            {
                var family = HistogramSeries().Replace(name, "");
                Assert.True(published.Contains(name) || published.Contains(family), $"{document} names {name}, which Latchkey does not publish ({string.Join(", ", published.Order())})");
            }
        }
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"\blatchkey_[a-z_]+[a-z]")]
    private static partial System.Text.RegularExpressions.Regex MetricName();

    [System.Text.RegularExpressions.GeneratedRegex(@"_(bucket|count|sum)$")]
    private static partial System.Text.RegularExpressions.Regex HistogramSeries();
}

/// <summary>A free port for the scrape endpoint, and an OTLP/HTTP collector on loopback that keeps what it is sent.</summary>
public sealed class TelemetryEndpoints : IDisposable
{
    private readonly HttpListener _collector = new();
    private readonly ConcurrentQueue<(string Path, byte[] Body)> _received = new();

    public TelemetryEndpoints()
    {
        PrometheusPort = FreePorts.Next();
        CollectorUrl = $"http://127.0.0.1:{FreePorts.Next()}/";
        _collector.Prefixes.Add(CollectorUrl);
        _collector.Start();
        _ = Task.Run(ReceiveAsync);
    }

    public int PrometheusPort { get; }

    public string CollectorUrl { get; }

    public void Configure(WebApplicationBuilder builder)
    {
        builder.Configuration["Telemetry:Prometheus"] = "true";
        builder.Configuration["Telemetry:PrometheusPort"] = PrometheusPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        builder.Configuration["Telemetry:OtlpEndpoint"] = CollectorUrl.TrimEnd('/');
    }

    /// <summary>Everything posted to <paramref name="path"/>, as text: OTLP's protobuf keeps strings as UTF-8.</summary>
    public string Received(string path) =>
        string.Join("\n", _received.Where(r => r.Path == path).Select(r => Encoding.UTF8.GetString(r.Body)));

    private async Task ReceiveAsync()
    {
        while (_collector.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _collector.GetContextAsync();
            }
            catch (Exception exception) when (exception is HttpListenerException or ObjectDisposedException)
            {
                return;
            }
            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            _received.Enqueue((context.Request.Url!.AbsolutePath, body.ToArray()));
            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/x-protobuf";
            context.Response.Close();
        }
    }

    public void Dispose() => _collector.Close();
}

public sealed class TelemetrySqliteServer : SqliteServer
{
    public TelemetryEndpoints Endpoints { get; } = new();

    protected override void ConfigureServer(WebApplicationBuilder builder) => Endpoints.Configure(builder);

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Endpoints.Dispose();
    }
}

public sealed class TelemetryPostgresServer : PostgresServer
{
    public TelemetryEndpoints Endpoints { get; } = new();

    protected override void ConfigureServer(WebApplicationBuilder builder) => Endpoints.Configure(builder);

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Endpoints.Dispose();
    }
}

public sealed class TelemetryTestsOnSqlite(TelemetrySqliteServer server) : TelemetryTests(server, server.Endpoints), IClassFixture<TelemetrySqliteServer>;

public sealed class TelemetryTestsOnPostgres(TelemetryPostgresServer server) : TelemetryTests(server, server.Endpoints), IClassFixture<TelemetryPostgresServer>;

using System.Diagnostics.Metrics;
using Latchkey.Storage;
using Npgsql;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Latchkey.Features.Telemetry;

/// <summary>
/// OpenTelemetry: Latchkey's meters (<see cref="LatchkeyMetrics"/>) and the framework's, a
/// Prometheus scrape endpoint on a listener of its own, and OTLP export of metrics and traces, each
/// by a setting (docs/operations.md, "Metrics and traces"). With none set, nothing is exported
/// and no listener is opened.
/// </summary>
public static class TelemetrySetup
{
    /// <summary>
    /// For a one-shot command (<c>latchkey keys list</c>, ...) beside a running server with the same
    /// settings: it exports nothing, and above all does not try to open the server's scrape port.
    /// </summary>
    public static void LeaveOutExports(WebApplicationBuilder builder) =>
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            [$"{TelemetryOptions.SectionName}:{nameof(TelemetryOptions.Prometheus)}"] = "false",
            [$"{TelemetryOptions.SectionName}:{nameof(TelemetryOptions.OtlpEndpoint)}"] = "",
        });

    public static WebApplicationBuilder AddTelemetry(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<TelemetryOptions>().BindConfiguration(TelemetryOptions.SectionName)
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<LatchkeyMetrics>();

        var options = builder.Configuration.GetSection(TelemetryOptions.SectionName).Get<TelemetryOptions>() ?? new TelemetryOptions();
        if (!options.Exports)
        {
            return builder;
        }
        builder.Services.AddHostedService<TelemetryGauges>();
        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(options.ServiceName, serviceInstanceId: Environment.MachineName));
        telemetry.WithMetrics(metrics =>
        {
            metrics.AddMeter(LatchkeyMetrics.MeterName)
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                // The runtime's own (GC, thread pool, JIT) and Npgsql's connection pool.
                .AddMeter("System.Runtime", "Npgsql");
            if (options.Prometheus)
            {
                metrics.AddPrometheusHttpListener(listener =>
                {
                    listener.Host = options.PrometheusHost;
                    listener.Port = options.PrometheusPort;
                });
            }
        });
        if (options.SendsOtlp)
        {
            telemetry.WithTracing(tracing => tracing
                // Probes would be most of the traces; they are in the metrics.
                .AddAspNetCoreInstrumentation(aspNetCore => aspNetCore.Filter = context =>
                    !context.Request.Path.StartsWithSegments(Operations.OperationsSetup.LivenessPath) && !context.Request.Path.StartsWithSegments(Operations.OperationsSetup.ReadinessPath))
                .AddHttpClientInstrumentation()
                .AddEntityFrameworkCoreInstrumentation()
                .AddNpgsql());
            telemetry.UseOtlpExporter(options.OtlpProtocol == "grpc" ? OtlpExportProtocol.Grpc : OtlpExportProtocol.HttpProtobuf, new Uri(options.OtlpEndpoint!));
        }
        return builder;
    }
}

/// <summary>Gauges that need the database or other features: pending approvals (counted every 15 s) and the audit queues' depth.</summary>
internal sealed partial class TelemetryGauges(LatchkeyMetrics metrics, IServiceScopeFactory scopes, IEnumerable<IQueuedAuditLog> audits, ILogger<TelemetryGauges> logger)
    : BackgroundService
{
    private long _pendingApprovals;

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        // Here rather than in ExecuteAsync, which runs in the background: the gauges exist once the host has started.
        metrics.Meter.CreateObservableGauge("latchkey.approvals.pending", () => Interlocked.Read(ref _pendingApprovals), "{approval}",
            "Tool-call approvals waiting for a person (all accounts; counted every 15 s).");
        metrics.Meter.CreateObservableGauge("latchkey.audit.queue.depth",
            () => audits.Select(audit => new Measurement<int>(audit.Queued, new KeyValuePair<string, object?>("log", audit.Name))), "{row}",
            "Audit rows queued in this process, not yet written (by log).");
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(15));
        do
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                Interlocked.Exchange(ref _pendingApprovals, await scope.ServiceProvider.GetRequiredService<Mcp.Approvals.ToolCallApprovals>().CountPendingAsync(stoppingToken));
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                LogProbeFailed(logger, exception);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Counting pending approvals for the metrics failed; the gauge keeps its last value")]
    private static partial void LogProbeFailed(ILogger logger, Exception exception);
}

using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace Latchkey.Tests.Infrastructure;

/// <summary>
/// One log entry as a log sink would see it: the formatted message, every structured value, the
/// exception, and the trace it was written in (what ActivityTrackingOptions puts in its scope).
/// </summary>
public sealed record CapturedLogLine(LogLevel Level, string Category, string Text, string? TraceId = null);

/// <summary>
/// Keeps every log entry of every category at every level, Trace included, in memory. It turns
/// every category up to Trace the way an operator would, in configuration (so Latchkey's own
/// filters still apply), and keeps the console of the test run at Warning.
/// </summary>
public sealed class CapturedLogs : ILoggerProvider
{
    public ConcurrentQueue<CapturedLogLine> Lines { get; } = new();

    public static CapturedLogs AddTo(WebApplicationBuilder builder)
    {
        var capture = new CapturedLogs();
        var everything = new Dictionary<string, string?> { ["Logging:Console:LogLevel:Default"] = "Warning" };
        foreach (var category in new[] { "Default", "Microsoft", "Microsoft.AspNetCore", "Microsoft.EntityFrameworkCore", "Microsoft.Hosting.Lifetime", "System", "OpenIddict", "Latchkey", "Latchkey.Features.ExternalApi.ExternalApiAuthenticationHandler" })
        {
            everything[$"Logging:LogLevel:{category}"] = "Trace";
        }
        builder.Configuration.AddInMemoryCollection(everything);
        builder.Logging.SetMinimumLevel(LogLevel.Trace);
        builder.Logging.AddProvider(capture);
        return capture;
    }

    public ILogger CreateLogger(string categoryName) => new CapturingLogger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class CapturingLogger(CapturedLogs logs, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var text = formatter(state, exception);
            if (state is IEnumerable<KeyValuePair<string, object?>> values)
            {
                // Structured values go to sinks as fields even when the message template leaves them out.
                text += " | " + string.Join(" | ", values.Select(v => $"{v.Key}={v.Value}"));
            }
            if (exception is not null)
            {
                text += " | " + exception;
            }
            logs.Lines.Enqueue(new CapturedLogLine(logLevel, category, text, System.Diagnostics.Activity.Current?.TraceId.ToString()));
        }
    }
}

/// <summary>A SQLite server whose every log line, at every level, is captured.</summary>
public sealed class LogCapturingSqliteServer : SqliteServer
{
    public CapturedLogs Logs { get; private set; } = null!;

    protected override void ConfigureServer(WebApplicationBuilder builder) => Logs = CapturedLogs.AddTo(builder);
}

/// <summary>A PostgreSQL server whose every log line, at every level, is captured.</summary>
public sealed class LogCapturingPostgresServer : PostgresServer
{
    public CapturedLogs Logs { get; private set; } = null!;

    protected override void ConfigureServer(WebApplicationBuilder builder) => Logs = CapturedLogs.AddTo(builder);
}

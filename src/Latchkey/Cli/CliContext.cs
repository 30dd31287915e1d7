using System.CommandLine;
using System.Data.Common;
using Latchkey.Cluster;
using Latchkey.Storage;
using Microsoft.Extensions.Options;

namespace Latchkey.Cli;

/// <summary>What every command needs: how to build the application, and uniform error handling.</summary>
public sealed class CliContext(Action<WebApplicationBuilder>? configure, TextReader input)
{
    public const int Success = 0;
    public const int Failure = 1;
    public const int ConfigurationError = 2;
    public const int UsageError = 2;

    /// <summary>
    /// Lists that a command's <c>--help</c> shows after its options (the scopes a <c>--scope</c>
    /// takes, the providers a <c>--provider</c> names), read from this server's configuration.
    /// </summary>
    internal Dictionary<Command, Func<IServiceProvider, TextWriter, Task>> HelpReferences { get; } = [];

    /// <summary>Adds a list to <paramref name="command"/>'s help (see <see cref="HelpReferences"/>).</summary>
    public void AddHelpReference(Command command, Func<IServiceProvider, TextWriter, Task> write) => HelpReferences[command] = write;

    public TextReader Input { get; } = input;

    /// <summary>Builds the application for <c>serve</c>, with the server's logging.</summary>
    public WebApplication BuildServer(string[] hostArgs) => Program.BuildWebApp(hostArgs, configure);

    /// <summary>
    /// Builds the application for a one-shot command: only warnings and errors are logged, and the
    /// request pipeline is left out unless the command looks at the endpoints.
    /// </summary>
    public WebApplication BuildApp(bool endpoints = false) => Program.BuildWebApp([], builder =>
    {
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddFilter("Latchkey", LogLevel.Warning);
        configure?.Invoke(builder);
        Latchkey.Features.Telemetry.TelemetrySetup.LeaveOutExports(builder);
    }, pipeline: endpoints);

    /// <summary>
    /// Runs a command against a built (not started) application, with the schema migrated
    /// when <c>Storage:MigrateOnStart</c> is on, and turns expected failures into messages.
    /// </summary>
    public async Task<int> RunAsync(ParseResult parse, Func<IServiceProvider, TextWriter, CancellationToken, Task<int>> command,
        CancellationToken cancellationToken, bool migrate = true, bool routeEndpoints = false)
    {
        var output = parse.InvocationConfiguration.Output;
        var error = parse.InvocationConfiguration.Error;
        try
        {
            await using var app = BuildApp(endpoints: routeEndpoints);
            ValidateOptions(app.Services);
            if (routeEndpoints)
            {
                // The host wires routing only when it starts; commands that inspect endpoints
                // (the OpenAPI export) wire it themselves so that the mapped endpoints are visible.
                app.UseRouting();
                app.UseEndpoints(_ => { });
            }
            await using var scope = app.Services.CreateAsyncScope();
            if (migrate && scope.ServiceProvider.GetRequiredService<IOptions<StorageOptions>>().Value.MigrateOnStart)
            {
                await scope.ServiceProvider.GetRequiredService<DatabaseMigrator>().MigrateAsync(cancellationToken);
            }
            var exitCode = await command(scope.ServiceProvider, output, cancellationToken);
            // The host is never started, so its audit writers never run: write what the command queued
            // (a key created or revoked is the owner's security event).
            foreach (var audit in scope.ServiceProvider.GetServices<IQueuedAuditLog>())
            {
                await audit.FlushAsync(cancellationToken);
            }
            // Running servers drop what they cached about the rows this command changed.
            if (app.Services.GetService<ICacheAnnouncementSender>() is { } announcements)
            {
                try
                {
                    await announcements.FlushAsync(cancellationToken);
                }
                catch (Exception exception) when (exception is DbException or IOException or UnauthorizedAccessException)
                {
                    // The command's work is committed: say so rather than report a failure someone might repeat.
                    await parse.InvocationConfiguration.Error.WriteLineAsync(
                        $"Warning: running servers could not be told of this change ({exception.Message}); they see it within Caching:MaxAgeSeconds.");
                }
            }
            return exitCode;
        }
        catch (Exception exception) when (Describe(exception) is { } message)
        {
            await error.WriteLineAsync(message);
            return IsConfigurationError(exception) ? ConfigurationError : Failure;
        }
    }

    public static async Task WriteErrorsAsync(TextWriter error, string heading, IReadOnlyDictionary<string, string[]> errors)
    {
        await error.WriteLineAsync(heading);
        foreach (var message in errors.SelectMany(e => e.Value))
        {
            await error.WriteLineAsync("  - " + message);
        }
    }

    /// <summary>A value cut to a table column's width, with an ellipsis where it was cut.</summary>
    public static string Truncate(string value, int length) => value.Length <= length ? value : value[..(length - 1)] + "…";

    /// <summary>Runs the <c>ValidateOnStart</c> checks now, as starting the host would.</summary>
    public static void ValidateOptions(IServiceProvider services) =>
        services.GetService<IStartupValidator>()?.Validate();

    /// <summary>Failures of settings (exit code 2) rather than of the operation.</summary>
    public static bool IsConfigurationError(Exception exception) =>
        exception is OptionsValidationException or Latchkey.Features.KeyProtection.MasterKeyUnavailableException;

    /// <summary>A plain message for failures a person can fix; null for bugs, which keep their stack trace.</summary>
    public static string? Describe(Exception exception) => exception switch
    {
        OptionsValidationException options => "Configuration error:" + Environment.NewLine +
            string.Join(Environment.NewLine, options.Failures.Select(f => "  - " + f)),
        DbException db => $"Cannot use the database: {db.Message}",
        InvalidOperationException { InnerException: DbException db } => $"Cannot use the database: {db.Message}",
        Latchkey.Features.KeyProtection.MasterKeyUnavailableException masterKey => $"Master key: {masterKey.Message}",
        _ => null,
    };
}

using System.Text.Json;
using System.Text.Json.Serialization;
using Latchkey.Common;
using Latchkey.Storage;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.DependencyInjection.Extensions;

using KestrelServerOptions = Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions;

namespace Latchkey.Features.Operations;

/// <summary>What every request and every node share: errors, JSON, limits, health, Data Protection.</summary>
public static class OperationsSetup
{
    internal const string UnsupportedMediaTypeDetail = "Send the body as JSON with 'Content-Type: application/json'.";

    public static WebApplicationBuilder AddOperations(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<ServerOptions>().BindConfiguration(ServerOptions.SectionName)
            .ValidateDataAnnotations().ValidateOnStart();
        var server = builder.Configuration.GetSection(ServerOptions.SectionName).Get<ServerOptions>() ?? new ServerOptions();
        builder.Services.Configure<KestrelServerOptions>(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = server.MaxRequestBodyBytes;
        });

        builder.Services.TryAddSingleton(TimeProvider.System);
        if (server.TrustForwardedHeaders)
        {
            builder.Services.Configure<ForwardedHeadersOptions>(options =>
            {
                options.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto | ForwardedHeaders.XForwardedHost;
                // The operator vouches for the proxy; it may be on any address.
                options.KnownIPNetworks.Clear();
                options.KnownProxies.Clear();
            });
        }

        builder.Services.AddProblemDetails(options => options.CustomizeProblemDetails = context =>
        {
            context.ProblemDetails.Extensions.TryAdd("trace_id", context.HttpContext.TraceIdentifier);
            // Endpoints refuse other media types before any handler runs; say what they accept.
            if (context.ProblemDetails.Status == StatusCodes.Status415UnsupportedMediaType)
            {
                context.ProblemDetails.Detail ??= UnsupportedMediaTypeDetail;
            }
        });
        builder.Services.AddSingleton<IProblemDetailsWriter, ProblemJsonFallback>();
        builder.Services.AddExceptionHandler<LatchkeyExceptionHandler>();
        // Bad requests are thrown so that one handler turns every one into problem details.
        builder.Services.Configure<RouteHandlerOptions>(options => options.ThrowOnBadRequest = true);

        builder.Services.Configure<Microsoft.AspNetCore.Http.Json.JsonOptions>(options =>
        {
            options.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            options.SerializerOptions.DictionaryKeyPolicy = JsonNamingPolicy.SnakeCaseLower;
            // An unknown field is a client bug worth reporting, not something to drop silently.
            options.SerializerOptions.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
            options.SerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.Never;
            options.SerializerOptions.Converters.Add(new NulRejectingStringConverter());
            options.SerializerOptions.Converters.Add(new UtcTimestampConverter());
        });

        builder.Services.AddHealthChecks().AddDbContextCheck<LatchkeyDbContext>("database", tags: ["ready"]);

        // Data Protection keys (cookies, antiforgery) live in the database so every node shares them.
        builder.Services.AddDataProtection()
            .SetApplicationName("Latchkey")
            .PersistKeysToDbContext<LatchkeyDbContext>();
        builder.Services.AddSummarizedTable<Microsoft.AspNetCore.DataProtection.EntityFrameworkCore.DataProtectionKey>("Data Protection keys");

        // Features add what they clean up; the leading node runs it all every Cleanup:IntervalHours.
        builder.Services.AddCleanup();

        if (string.Equals(builder.Configuration["Logging:Format"], "json", StringComparison.OrdinalIgnoreCase))
        {
            builder.Logging.AddJsonConsole(options => options.IncludeScopes = true);
        }
        KeepSecretsOutOfLogs(builder.Logging);
        return builder;
    }

    /// <summary>
    /// Categories that write secrets when turned up, held at Warning whatever the configured level
    /// (a rule for the exact category, added after configuration's, wins over it). OpenIddict logs
    /// each extracted request at Information (the PKCE verifier, state) and token values at Trace
    /// (authorization codes, identity tokens); ASP.NET Core's request lines carry the query string
    /// (state, and an access token where a client puts one there). See docs/operations.md, "Logs".
    /// </summary>
    public static readonly string[] SecretBearingLogCategories =
    [
        "OpenIddict.Server.OpenIddictServerDispatcher",
        "OpenIddict.Validation.OpenIddictValidationDispatcher",
        "Microsoft.AspNetCore.Hosting.Diagnostics",
    ];

    private static void KeepSecretsOutOfLogs(ILoggingBuilder logging)
    {
        foreach (var category in SecretBearingLogCategories)
        {
            logging.AddFilter(category, LogLevel.Warning);
        }
    }

    public static WebApplication UseOperations(this WebApplication app)
    {
        if (app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<ServerOptions>>().Value.TrustForwardedHeaders)
        {
            app.UseForwardedHeaders();
        }
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseUtf8JsonOnly();
        return app;
    }

    public const string LivenessPath = "/healthz";
    public const string ReadinessPath = "/readyz";

    public static WebApplication MapOperations(this WebApplication app)
    {
        app.MapHealthChecks(LivenessPath, new HealthCheckOptions { Predicate = _ => false })
            .WithTags("Operations").WithSummary("Liveness: the process answers");
        app.MapHealthChecks(ReadinessPath, new HealthCheckOptions { Predicate = check => check.Tags.Contains("ready") })
            .WithTags("Operations").WithSummary("Readiness: the database answers");
        return app;
    }
}

/// <summary>Turns exceptions into problem details: the client's mistakes as 4xx, ours as a bare 500.</summary>
internal sealed partial class LatchkeyExceptionHandler(IProblemDetailsService problems, ILogger<LatchkeyExceptionHandler> logger) : IExceptionHandler
{
    private static long s_lastUnavailableLog = long.MinValue / 2;

    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        ProblemDetails problem;
        if (exception is BadHttpRequestException bad)
        {
            problem = new ProblemDetails { Status = bad.StatusCode, Detail = Describe(bad) };
        }
        else if (DatabaseUnavailable.Is(exception))
        {
            // The database is away or overloaded, not the request at fault: trying again soon will work.
            // Once per few seconds: during an outage every request fails the same way.
            var now = Environment.TickCount64;
            var last = Interlocked.Read(ref s_lastUnavailableLog);
            if (now - last > 5000 && Interlocked.CompareExchange(ref s_lastUnavailableLog, now, last) == last)
            {
                LogDatabaseUnavailable(logger, exception.GetType().Name, exception.GetBaseException().Message);
            }
            problem = new ProblemDetails
            {
                Status = StatusCodes.Status503ServiceUnavailable,
                Detail = "The database is unavailable right now; try again shortly.",
            };
            context.Response.Headers.RetryAfter = DatabaseUnavailable.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        else
        {
            LogUnhandled(logger, exception);
            problem = new ProblemDetails
            {
                Status = StatusCodes.Status500InternalServerError,
                Detail = "Something went wrong on our side. The error has been logged; try again, and report it if it persists.",
            };
        }
        context.Response.StatusCode = problem.Status!.Value;
        return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = context, ProblemDetails = problem, Exception = exception });
    }

    private static string Describe(BadHttpRequestException bad) => bad.StatusCode switch
    {
        StatusCodes.Status413PayloadTooLarge => "The request body is too large.",
        StatusCodes.Status415UnsupportedMediaType => OperationsSetup.UnsupportedMediaTypeDetail,
        _ when bad.InnerException is JsonException json => $"The body is not valid JSON for this endpoint: {InputEcho.JsonError(json)}",
        // Binding messages quote the value that did not bind ("Failed to bind parameter \"int limit\" from \"...\"").
        _ => InputEcho.LibraryMessage(bad.Message),
    };

    [LoggerMessage(Level = LogLevel.Warning, Message = "Database unavailable ({Error}: {Message}); answered 503")]
    private static partial void LogDatabaseUnavailable(ILogger logger, string error, string message);

    [LoggerMessage(Level = LogLevel.Error, Message = "Unhandled exception")]
    private static partial void LogUnhandled(ILogger logger, Exception exception);
}

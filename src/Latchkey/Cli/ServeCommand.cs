using System.CommandLine;
using Latchkey.Features.Accounts;
using Latchkey.Features.AuthorizationServer;
using Latchkey.Features.Operations;
using Latchkey.Storage;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace Latchkey.Cli;

/// <summary><c>latchkey serve</c>: migrate the database if configured to, then serve until stopped.</summary>
public static class ServeCommand
{
    public static Command Create(CliContext context)
    {
        var serve = new Command("serve", "Run the server (the default when no command is given). " +
            "ASP.NET Core settings may follow, such as --urls http://0.0.0.0:8080.");
        Configure(serve, context, isDefault: false);
        return serve;
    }

    public static void Configure(Command command, CliContext context, bool isDefault)
    {
        // Host settings (--urls, --Storage:Provider=...) pass through to the web host.
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction(async (parse, cancellationToken) =>
        {
            var hostArgs = parse.UnmatchedTokens.ToArray();
            if (isDefault && hostArgs.Length > 0 && !hostArgs[0].StartsWith('-'))
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync(
                    $"Unknown command '{hostArgs[0]}'. Run 'latchkey --help' to see the commands.");
                return CliContext.ConfigurationError;
            }
            return await ServeAsync(context, hostArgs, parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, cancellationToken);
        });
    }

    private static async Task<int> ServeAsync(CliContext context, string[] hostArgs, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        try
        {
            await using var app = context.BuildServer(hostArgs);
            CliContext.ValidateOptions(app.Services);
            var storage = app.Services.GetRequiredService<IOptions<StorageOptions>>().Value;
            if (storage.MigrateOnStart)
            {
                await using var scope = app.Services.CreateAsyncScope();
                await scope.ServiceProvider.GetRequiredService<DatabaseMigrator>().MigrateAsync(cancellationToken);
            }
            await using (var scope = app.Services.CreateAsyncScope())
            {
                // Providers named in configuration (Broker:Providers) exist before the first request.
                await scope.ServiceProvider.GetRequiredService<Latchkey.Features.Broker.Providers.ProviderService>().EnsureConfiguredAsync(cancellationToken);
            }

            await app.StartAsync(cancellationToken);
            await PrintBannerAsync(app, storage, output);
            await app.WaitForShutdownAsync(cancellationToken);
            return CliContext.Success;
        }
        catch (Exception exception) when (CliContext.Describe(exception) is { } message)
        {
            await error.WriteLineAsync(message);
            return exception is OptionsValidationException ? CliContext.ConfigurationError : CliContext.Failure;
        }
        catch (IOException exception) when (exception.InnerException is System.Net.Sockets.SocketException || exception.Message.Contains("address", StringComparison.OrdinalIgnoreCase))
        {
            await error.WriteLineAsync($"Cannot listen: {exception.Message} Is another server using the port? Choose another with --urls.");
            return CliContext.Failure;
        }
    }

    private static async Task PrintBannerAsync(WebApplication app, StorageOptions storage, TextWriter output)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        var publicUrl = app.Services.GetRequiredService<IOptions<ServerOptions>>().Value.PublicUrl
                        ?? addresses.FirstOrDefault() ?? "http://localhost:5000";
        publicUrl = publicUrl.TrimEnd('/');
        var where = storage.IsPostgres ? "postgres" : $"sqlite ({storage.EffectiveConnectionString.Replace("Data Source=", "", StringComparison.Ordinal)})";
        await output.WriteLineAsync($"""

            Latchkey is running.
              Listening on : {string.Join(", ", addresses)}
              Storage      : {where}
              API docs     : {publicUrl}/docs  (OpenAPI: {publicUrl}/openapi/v1.json)
              Health       : {publicUrl}/healthz, {publicUrl}/readyz
              First user   : sign up at {publicUrl}{AccountsSetup.SignUpPath}
                             or run: latchkey users create --email you@example.com --name "Your Name"
            Press Ctrl+C to stop.

            """);
        // Only a server others can reach needs it; on loopback the Host header is the user's own.
        var reachable = addresses.Any(a => Uri.TryCreate(a.Replace("*", "0.0.0.0", StringComparison.Ordinal).Replace("+", "0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out var uri) && !uri.IsLoopback);
        if (string.IsNullOrEmpty(app.Services.GetRequiredService<IOptions<AuthorizationServerOptions>>().Value.Issuer) && reachable)
        {
            await output.WriteLineAsync(
                "Warning: AuthorizationServer:Issuer is not set, so Latchkey's address (the token issuer, MCP gateway URLs and the audiences " +
                "tokens are checked against) comes from each request's Host header. Set it to the public address, e.g. " +
                "LATCHKEY_AuthorizationServer__Issuer=https://id.example.com/ (docs/operations.md).");
        }
    }
}

using System.CommandLine;
using Latchkey.Features.Accounts;
using Latchkey.Features.AuthorizationServer;
using Latchkey.Features.KeyProtection;
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
                    $"Unknown command '{hostArgs[0]}'. Run '{CliInvocation.Of("--help")}' to see the commands.");
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
            return CliContext.IsConfigurationError(exception) ? CliContext.ConfigurationError : CliContext.Failure;
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
        var masterKeys = app.Services.GetRequiredService<MasterKeys>();
        await output.WriteLineAsync($"""

            Latchkey is running.
              Listening on : {string.Join(", ", addresses)}
              Storage      : {where}
              Master keys  : {masterKeys.Source}
              API docs     : {publicUrl}/docs  (OpenAPI: {publicUrl}/openapi/v1.json)
              Health       : {publicUrl}/healthz, {publicUrl}/readyz
              First user   : sign up at {publicUrl}{AccountsSetup.SignUpPath}
                             or run: {CliInvocation.Of("users create --email you@example.com --name \"Your Name\"")}

            """);
        if (app.Environment.IsProduction() && MasterKeyFileWarning(app, storage) is { } warning)
        {
            await output.WriteLineAsync(warning);
        }
        // Only a server others can reach needs it; on loopback the Host header is the user's own.
        var reachable = addresses.Any(a => Uri.TryCreate(a.Replace("*", "0.0.0.0", StringComparison.Ordinal).Replace("+", "0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out var uri) && !uri.IsLoopback);
        if (string.IsNullOrEmpty(app.Services.GetRequiredService<IOptions<AuthorizationServerOptions>>().Value.Issuer) && reachable)
        {
            await output.WriteLineAsync(
                "Warning: AuthorizationServer:Issuer is not set, so Latchkey's address (the token issuer, MCP gateway URLs and the audiences " +
                "tokens are checked against) comes from each request's Host header. Set it to the public address, e.g. " +
                "LATCHKEY_AuthorizationServer__Issuer=https://id.example.com/ (docs/operations.md).");
        }
        // Last, so that whoever waits for the banner (a person, a test) has seen the warnings too.
        await output.WriteLineAsync("Press Ctrl+C to stop.");
    }

    /// <summary>
    /// In production the master keys belong apart from the database: a generated key file, or
    /// one in the database's folder, travels with every copy of it. Null when the operator chose a place.
    /// </summary>
    private static string? MasterKeyFileWarning(WebApplication app, StorageOptions storage)
    {
        if (app.Services.GetRequiredService<IMasterKeyProvider>() is not MasterKeyFile keyFile)
        {
            return null;
        }
        var vault = app.Services.GetRequiredService<IOptions<VaultOptions>>().Value;
        var databaseFolder = storage.IsPostgres ? null : Path.GetDirectoryName(StorageOptions.SqliteFileOf(storage.EffectiveConnectionString));
        var besideDatabase = databaseFolder is not null &&
                             keyFile.FilePath.StartsWith(databaseFolder.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar, StringComparison.Ordinal);
        if (!string.IsNullOrWhiteSpace(vault.KeyFile) && !besideDatabase)
        {
            return null;
        }
        var what = $"Warning: the master key that protects every stored secret, session and signing key is the file {keyFile.FilePath}";
        return besideDatabase
            ? $"""
              {what}, in the database's folder: a copy of that folder, or a backup of it, is a copy of the keys.
                Move the file elsewhere and set Vault:KeyFile to it (a separate volume or a mounted secret), or give the keys in
                LATCHKEY_Vault__MasterKeys__<id>; then set Vault:RequireMasterKey=true (docs/operations.md#master-keys).
              """
            : $"""
              {what}, generated for this machine. Back it up apart from the database: without it nothing stored can be read.
                For production, set Vault:KeyFile to a place you manage (a separate volume or a mounted secret) or give the keys in
                LATCHKEY_Vault__MasterKeys__<id>, and set Vault:RequireMasterKey=true so that a server never starts with a new,
                empty key (docs/operations.md#master-keys).
              """;
    }
}

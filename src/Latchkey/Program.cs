using Latchkey.Cli;
using Latchkey.Cluster;
using Latchkey.Features.AccountData;
using Latchkey.Features.AccountSecurity;
using Latchkey.Features.Accounts;
using Latchkey.Features.Administration;
using Latchkey.Features.ApiDocs;
using Latchkey.Features.ApiKeys;
using Latchkey.Features.AuthorizationServer;
using Latchkey.Features.Broker;
using Latchkey.Features.Email;
using Latchkey.Features.ExternalApi;
using Latchkey.Features.ExternalSignIn;
using Latchkey.Features.KeyProtection;
using Latchkey.Features.Mcp;
using Latchkey.Features.Operations;
using Latchkey.Features.RateLimits;
using Latchkey.Features.Scopes;
using Latchkey.Features.SecurityEvents;
using Latchkey.Features.Settings;
using Latchkey.Features.Site;
using Latchkey.Features.Telemetry;
using Latchkey.Features.Webhooks;
using Latchkey.Storage;
using Microsoft.Extensions.Configuration.CommandLine;

namespace Latchkey;

public static class Program
{
    public const string EnvironmentPrefix = "LATCHKEY_";

    /// <summary>One executable: the CLI, whose default command serves the web app.</summary>
    public static Task<int> Main(string[] args) => LatchkeyCommandLine.InvokeAsync(args);

    /// <summary>
    /// The composition root: each feature adds its services, then (unless <paramref name="pipeline"/>
    /// is off: a CLI command that serves no requests needs only the services) its middleware and endpoints.
    /// </summary>
    public static WebApplication BuildWebApp(string[] args, Action<WebApplicationBuilder>? configure = null, bool pipeline = true)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = args,
            ContentRootPath = AppContext.BaseDirectory,
            // Razor Pages are found in the application assembly; name it, for hosts that are not latchkey itself (tests).
            ApplicationName = typeof(Program).Assembly.GetName().Name,
        });
        AddPrefixedEnvironmentVariables(builder.Configuration);
        configure?.Invoke(builder);

        builder.AddOperations();
        builder.AddTelemetry();
        builder.AddRateLimits();
        builder.AddSite();
        builder.AddStorage();
        builder.AddCluster();
        builder.AddKeyProtection();
        builder.AddScopes();
        builder.AddSecurityEvents();
        builder.AddRuntimeSettings();
        builder.AddEmail();
        builder.AddAccounts();
        builder.AddAccountSecurity();
        builder.AddExternalSignIn();
        builder.AddApiKeys();
        builder.AddExternalApi();
        builder.AddAuthorizationServer();
        builder.AddWebhooks();
        builder.AddBroker();
        builder.AddMcp();
        builder.AddAccountData();
        builder.AddAdministration();
        builder.AddApiDocs();

        var app = builder.Build();
        if (!pipeline)
        {
            return app;
        }
        app.UseSite();
        app.UseOperations();
        app.UseRateLimits();
        app.UseAuthorizationServer();
        app.UseAuthentication();
        app.UseAccountSecurity();
        app.UseAuthorization();

        app.MapOperations();
        app.MapSite();
        app.MapAccounts();
        app.MapExternalSignIn();
        app.MapScopes();
        app.MapApiKeys();
        app.MapExternalApi();
        app.MapAuthorizationServer();
        app.MapBroker();
        app.MapWebhooks();
        app.MapMcp();
        app.MapSecurityEvents();
        app.MapApiDocs();
        return app;
    }

    /// <summary>
    /// <c>LATCHKEY_Storage__Provider=postgres</c> and friends. They override appsettings.json and
    /// plain environment variables, and are overridden by command-line arguments.
    /// </summary>
    private static void AddPrefixedEnvironmentVariables(ConfigurationManager configuration)
    {
        var sources = configuration.Sources;
        // The last command-line source is the application's; an earlier one (host settings) sits before appsettings.json.
        var commandLine = sources.OfType<CommandLineConfigurationSource>().LastOrDefault();
        var index = commandLine is null ? sources.Count : sources.IndexOf(commandLine);
        sources.Insert(index, new Microsoft.Extensions.Configuration.EnvironmentVariables.EnvironmentVariablesConfigurationSource
        {
            Prefix = EnvironmentPrefix,
        });
    }
}

using System.CommandLine;
using Latchkey.Common;
using Latchkey.Features.AuthorizationServer.Apps;
using Latchkey.Features.AuthorizationServer.Stores;

namespace Latchkey.Cli;

/// <summary><c>latchkey apps create|list|disable|enable|rotate-secret</c>: OAuth apps, for operators and developers.</summary>
public static class AppCommands
{
    public static Command Create(CliContext context) => new("apps", "Manage OAuth apps (clients of the authorization server).")
    {
        CreateCommand(context),
        ListCommand(context),
        SetEnabledCommand(context, enabled: false),
        SetEnabledCommand(context, enabled: true),
        RotateSecretCommand(context),
    };

    private static Command CreateCommand(CliContext context)
    {
        var owner = new Option<string>("--owner") { Description = "E-mail address of the app's owner.", Required = true };
        var name = new Option<string>("--name") { Description = "The name people see on the consent page.", Required = true };
        var redirects = new Option<string[]>("--redirect-uri") { Description = "A redirect URI; repeat for several (needed for the authorization_code grant)." };
        var scopes = new Option<string[]>("--scope") { Description = "A scope the app may request; repeat for several (listed below).", Required = true };
        var confidential = new Option<bool>("--confidential") { Description = "A server-side app with a client secret (default: public, PKCE only)." };
        var description = new Option<string?>("--description") { Description = "What the app does, in a sentence." };
        var homepage = new Option<string?>("--homepage") { Description = "The app's homepage URL." };
        var grantTypes = new Option<string[]>("--grant-type")
        {
            Description = "A grant the app may use; repeat for several. Default: authorization_code and refresh_token (and client_credentials " +
                          "for a confidential app). Also: urn:ietf:params:oauth:grant-type:device_code, urn:ietf:params:oauth:grant-type:token-exchange.",
        };
        var requirePar = new Option<bool>("--require-par") { Description = "Accept this app's authorization requests only when pushed first (RFC 9126)." };

        var create = new Command("create", "Register an app; a confidential app's secret is printed once.")
        {
            owner, name, redirects, scopes, confidential, description, homepage, grantTypes, requirePar,
        };
        context.AddHelpReference(create, HelpLists.Scopes(withOpenIdScopes: true));
        create.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var user = await UserCommands.FindAsync(services, parse.GetValue(owner)!, error);
            if (user is null)
            {
                return CliContext.Failure;
            }
            var grants = SplitList(parse.GetValue(grantTypes));
            var request = new OAuthAppRequest(parse.GetValue(name), parse.GetValue(description), parse.GetValue(homepage),
                parse.GetValue(redirects) ?? [], SplitList(parse.GetValue(scopes)), parse.GetValue(confidential),
                grants is { Length: > 0 } ? grants : null, parse.GetValue(requirePar));
            // The operator registers first-party apps here, so the name may be the platform's own
            // ("Latchkey Console"); apps registered by users or by themselves may not imitate it.
            var (created, errors) = await services.GetRequiredService<OAuthAppService>().CreateFirstPartyAsync(user.Id, request, ct);
            if (created is null)
            {
                await CliContext.WriteErrorsAsync(error, "The app was not registered:", errors);
                return CliContext.Failure;
            }
            await output.WriteLineAsync($"Registered {created.Application.DisplayName}.");
            await output.WriteLineAsync($"client_id:     {created.Application.ClientId}");
            if (created.ClientSecret is not null)
            {
                await output.WriteLineAsync($"client_secret: {created.ClientSecret}");
                await output.WriteLineAsync("Store the secret now: it is shown only once.");
            }
            return CliContext.Success;
        }, cancellationToken));
        return create;
    }

    private static Command ListCommand(CliContext context)
    {
        var owner = new Option<string>("--owner") { Description = "E-mail address of the owner whose apps to list.", Required = true };
        var list = new Command("list", "List an owner's apps.") { owner };
        list.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var user = await UserCommands.FindAsync(services, parse.GetValue(owner)!, parse.InvocationConfiguration.Error);
            if (user is null)
            {
                return CliContext.Failure;
            }
            var apps = await services.GetRequiredService<OAuthAppService>().ListOwnedAsync(user.Id, ct);
            if (apps.Count == 0)
            {
                await output.WriteLineAsync($"{user.Email} has no apps.");
                return CliContext.Success;
            }
            await output.WriteLineAsync($"{"CLIENT ID",-32} {"NAME",-24} {"TYPE",-12} {"ENABLED",-8} SCOPES");
            foreach (var app in apps)
            {
                await output.WriteLineAsync($"{app.ClientId,-32} {app.Name,-24} {app.ClientType,-12} {(app.Enabled ? "yes" : "no"),-8} {string.Join(' ', app.Scopes)}");
            }
            return CliContext.Success;
        }, cancellationToken));
        return list;
    }

    private static Command SetEnabledCommand(CliContext context, bool enabled)
    {
        var clientId = new Argument<string>("client-id") { Description = "The app's client id." };
        var command = new Command(enabled ? "enable" : "disable",
            enabled ? "Enable an app again." : "Disable an app: its tokens stop working at once and it cannot start new flows.") { clientId };
        command.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var app = await FindAsync(services, parse.GetValue(clientId)!, parse.InvocationConfiguration.Error, ct);
            if (app is null)
            {
                return CliContext.Failure;
            }
            await services.GetRequiredService<OAuthAppService>().SetEnabledAsync(app, enabled, ct);
            await output.WriteLineAsync($"{(enabled ? "Enabled" : "Disabled")} {app.DisplayName} ({app.ClientId}).");
            return CliContext.Success;
        }, cancellationToken));
        return command;
    }

    private static Command RotateSecretCommand(CliContext context)
    {
        var clientId = new Argument<string>("client-id") { Description = "The app's client id." };
        var rotate = new Command("rotate-secret", "Replace a confidential app's client secret; the new one is printed once.") { clientId };
        rotate.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var app = await FindAsync(services, parse.GetValue(clientId)!, error, ct);
            if (app is null)
            {
                return CliContext.Failure;
            }
            var secret = await services.GetRequiredService<OAuthAppService>().RotateSecretAsync(app, ct);
            if (secret is null)
            {
                await error.WriteLineAsync($"{app.ClientId} is a public app; it has no client secret.");
                return CliContext.Failure;
            }
            await output.WriteLineAsync($"client_secret: {secret}");
            await output.WriteLineAsync("The old secret no longer works. Store this one now: it is shown only once.");
            return CliContext.Success;
        }, cancellationToken));
        return rotate;
    }

    private static async Task<OAuthApplication?> FindAsync(IServiceProvider services, string clientId, TextWriter error, CancellationToken cancellationToken)
    {
        var app = await services.GetRequiredService<OAuthApplicationManager>().FindByClientIdAsync(clientId, cancellationToken);
        if (app is null)
        {
            await error.WriteLineAsync($"No app has the client id {InputEcho.Quote(clientId)}. '{CliInvocation.Of("apps list --owner <e-mail>")}' shows them.");
        }
        return app;
    }

    /// <summary>Accepts "--scope A --scope B" as well as "--scope A,B" or "--scope 'A B'".</summary>
    internal static string[] SplitList(string[]? values) =>
        (values ?? []).SelectMany(v => v.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries)).ToArray();
}

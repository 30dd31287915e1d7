using System.CommandLine;
using System.Text.Json;
using Latchkey.Features.AccountData;
using Latchkey.Features.Accounts;
using Latchkey.Features.Administration;

namespace Latchkey.Cli;

/// <summary>
/// <c>latchkey users list|show|reset-password|disable|enable|delete|grant-admin|revoke-admin|require-two-factor|reset-two-factor</c>:
/// looking after accounts from the server's machine, through the same <see cref="AccountAdministration"/>
/// as the admin pages. <c>--json</c> prints what a script reads (snake_case, one document).
/// </summary>
internal static class UserAdminCommands
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
    };

    public static IEnumerable<Command> Create(CliContext context)
    {
        yield return List(context);
        yield return Show(context);
        yield return ResetPassword(context);
        yield return SetDisabled(context, disable: true);
        yield return SetDisabled(context, disable: false);
        yield return SetAdmin(context, grant: true);
        yield return SetAdmin(context, grant: false);
        yield return RequireTwoFactor(context);
        yield return ResetTwoFactor(context);
        yield return Delete(context);
    }

    private static Option<bool> JsonOption() => new("--json") { Description = "Print JSON (snake_case) for scripts instead of a table." };

    private static Argument<string> EmailArgument() => new("email") { Description = "The account's e-mail address." };

    private static Command List(CliContext context)
    {
        var search = new Option<string?>("--search") { Description = "Only accounts whose e-mail address or name contains this text (any case)." };
        var json = JsonOption();
        var list = new Command("list", $"List accounts (at most {AccountAdministration.ListLimit}, oldest first).") { search, json };
        list.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var summaries = await services.GetRequiredService<AccountAdministration>().SearchAsync(parse.GetValue(search), AccountAdministration.ListLimit, ct);
            if (parse.GetValue(json))
            {
                await output.WriteLineAsync(JsonSerializer.Serialize(summaries, Json));
                return CliContext.Success;
            }
            if (summaries.Count == 0)
            {
                await output.WriteLineAsync("No accounts" + (parse.GetValue(search) is { Length: > 0 } ? " match." : $" yet. Create one with '{CliInvocation.Of("users create")}'."));
                return CliContext.Success;
            }
            await output.WriteLineAsync($"{"E-MAIL",-36} {"NAME",-24} {"CREATED",-10} {"STATUS",-24} ROLES");
            foreach (var user in summaries)
            {
                await output.WriteLineAsync($"{user.Email,-36} {CliContext.Truncate(user.Name, 24),-24} {user.CreatedAt:yyyy-MM-dd} {user.StatusText,-24} {string.Join(',', user.Roles)}");
            }
            return CliContext.Success;
        }, cancellationToken));
        return list;
    }

    private static Command Show(CliContext context)
    {
        var email = EmailArgument();
        var json = JsonOption();
        var show = new Command("show", "Show one account: its status, roles and what it owns (keys, apps, authorizations, credentials, MCP servers).") { email, json };
        show.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var user = await UserCommands.FindAsync(services, parse.GetValue(email)!, parse.InvocationConfiguration.Error);
            if (user is null)
            {
                return CliContext.Failure;
            }
            var details = await services.GetRequiredService<AccountAdministration>().DetailsAsync(user, ct);
            var summary = details.User;
            if (parse.GetValue(json))
            {
                await output.WriteLineAsync(JsonSerializer.Serialize(details, Json));
                return CliContext.Success;
            }
            await output.WriteLineAsync($"""
                {summary.Email} ({summary.Id})
                  Name            : {summary.Name}
                  Time zone       : {summary.TimeZone}
                  Created         : {summary.CreatedAt:u}
                  E-mail confirmed: {(summary.EmailConfirmed ? "yes" : "no")}
                  Status          : {summary.StatusText}
                  Roles           : {(summary.Roles.Count == 0 ? "none" : string.Join(", ", summary.Roles))}
                  API keys        : {details.ActiveApiKeys} active
                  OAuth apps      : {details.OwnedApps} owned
                  Authorizations  : {details.ValidAuthorizations} valid (apps it signed in to)
                  Credentials     : {details.Credentials} stored
                  MCP servers     : {details.McpServers}
                  Two-factor      : {(details.TwoFactorEnabled ? "on" : "off")}{(details.TwoFactorRequired ? ", required for this account" : "")}
                  Passkeys        : {details.Passkeys}
                  Sessions        : {details.Sessions} signed in
                """);
            return CliContext.Success;
        }, cancellationToken));
        return show;
    }

    private static Command ResetPassword(CliContext context)
    {
        var email = EmailArgument();
        var passwordStdin = new Option<bool>("--password-stdin")
        {
            Description = "Read the new password from standard input. Without it a strong password is generated and printed once.",
        };
        var json = JsonOption();
        var reset = new Command("reset-password",
            "Set a new password for an account (for someone locked out of their e-mail). Its sessions end and a lock-out ends (a disabled account stays disabled).")
            { email, passwordStdin, json };
        reset.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var user = await UserCommands.FindAsync(services, parse.GetValue(email)!, error);
            if (user is null)
            {
                return CliContext.Failure;
            }
            var generated = !parse.GetValue(passwordStdin);
            var password = await UserCommands.NewPasswordAsync(context, generated, ct);
            var result = await services.GetRequiredService<AccountAdministration>().ResetPasswordAsync(user, password, "latchkey users reset-password");
            if (!result.Succeeded)
            {
                await CliContext.WriteErrorsAsync(error, "The password was not changed:", new Dictionary<string, string[]>
                {
                    ["password"] = [.. result.Errors.Select(e => e.Description)],
                });
                return CliContext.Failure;
            }
            if (parse.GetValue(json))
            {
                await WriteJsonAsync(output, new { email = user.Email, id = user.Id, password = generated ? password : null });
                return CliContext.Success;
            }
            // A lock-out after failed sign-ins ends; a disabled account stays disabled ('users enable').
            await output.WriteLineAsync($"The password of {user.Email} is changed; its sessions have ended.");
            if (generated)
            {
                await output.WriteLineAsync($"Password: {password}");
                await output.WriteLineAsync("This password is shown only now.");
            }
            return CliContext.Success;
        }, cancellationToken));
        return reset;
    }

    private static Command SetDisabled(CliContext context, bool disable)
    {
        var email = EmailArgument();
        var json = JsonOption();
        var command = new Command(disable ? "disable" : "enable", disable
            ? "Disable an account: it cannot sign in, its API keys are refused (kept, not revoked), its sessions end, " +
              "and every app's sign-in and token of it is revoked."
            : "Enable a disabled account again (its API keys work again; apps must be authorized again).") { email, json };
        command.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var user = await UserCommands.FindAsync(services, parse.GetValue(email)!, parse.InvocationConfiguration.Error);
            if (user is null)
            {
                return CliContext.Failure;
            }
            var status = disable ? UserStatuses.Disabled : UserStatuses.Active;
            var changed = AccountDisabling.IsDisabled(user) != disable;
            var administration = services.GetRequiredService<AccountAdministration>();
            DisableOutcome? revoked = null;
            if (changed && disable)
            {
                revoked = await administration.DisableAsync(user, "latchkey users disable", ct);
            }
            else if (changed)
            {
                await administration.EnableAsync(user, "latchkey users enable");
            }
            if (parse.GetValue(json))
            {
                await WriteJsonAsync(output, new { email = user.Email, id = user.Id, status, changed,
                    revoked_authorizations = revoked?.Authorizations ?? 0, revoked_tokens = revoked?.Tokens ?? 0 });
            }
            else if (!changed)
            {
                await output.WriteLineAsync($"{user.Email} is already {(disable ? "disabled" : "enabled")}; nothing changed.");
            }
            else
            {
                await output.WriteLineAsync(revoked is null
                    ? $"{user.Email} is enabled: it can sign in, and its API keys work again. Apps it used must be authorized again."
                    : $"{user.Email} is disabled: it cannot sign in, its API keys are refused, its sessions have ended; " +
                      $"{revoked.Authorizations} app sign-in(s) and {revoked.Tokens} token(s) revoked.");
            }
            return CliContext.Success;
        }, cancellationToken));
        return command;
    }

    private static Command SetAdmin(CliContext context, bool grant)
    {
        var email = EmailArgument();
        var command = new Command(grant ? "grant-admin" : "revoke-admin",
            grant ? "Make an account an administrator of this deployment (the admin role)." : "Take the admin role from an account.") { email };
        command.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var user = await UserCommands.FindAsync(services, parse.GetValue(email)!, parse.InvocationConfiguration.Error);
            if (user is null)
            {
                return CliContext.Failure;
            }
            if (!await services.GetRequiredService<AccountAdministration>().SetAdminAsync(user, grant))
            {
                await output.WriteLineAsync($"{user.Email} {(grant ? "is already" : "is not")} an administrator; nothing changed.");
                return CliContext.Success;
            }
            // Sessions carry the roles: they end, and the next sign-in has the new ones.
            await output.WriteLineAsync((grant ? $"{user.Email} is now an administrator" : $"{user.Email} is no longer an administrator") +
                                        "; its sessions have ended (the next sign-in carries the change).");
            return CliContext.Success;
        }, cancellationToken));
        return command;
    }

    private static Command RequireTwoFactor(CliContext context)
    {
        var email = EmailArgument();
        var off = new Option<bool>("--off") { Description = "Stop requiring it (the account may keep it on)." };
        var command = new Command("require-two-factor",
            "Require two-factor authentication of an account: without it, the account is sent to set it up at its next request.") { email, off };
        command.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var user = await UserCommands.FindAsync(services, parse.GetValue(email)!, parse.InvocationConfiguration.Error);
            if (user is null)
            {
                return CliContext.Failure;
            }
            var required = !parse.GetValue(off);
            if (!await services.GetRequiredService<AccountAdministration>().SetTwoFactorRequiredAsync(user, required, "latchkey users require-two-factor"))
            {
                await output.WriteLineAsync($"{user.Email} {(required ? "already must" : "already need not")} use two-factor authentication; nothing changed.");
                return CliContext.Success;
            }
            await output.WriteLineAsync(required
                ? $"{user.Email} must use two-factor authentication{(user.TwoFactorEnabled ? " (it already does)." : "; it is sent to set it up at its next request.")}"
                : $"{user.Email} no longer has to use two-factor authentication.");
            return CliContext.Success;
        }, cancellationToken));
        return command;
    }

    private static Command ResetTwoFactor(CliContext context)
    {
        var email = EmailArgument();
        var command = new Command("reset-two-factor",
            "Turn off an account's two-factor authentication (lost phone and recovery codes): its key and codes are forgotten and its sessions end.") { email };
        command.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var user = await UserCommands.FindAsync(services, parse.GetValue(email)!, parse.InvocationConfiguration.Error);
            if (user is null)
            {
                return CliContext.Failure;
            }
            if (!user.TwoFactorEnabled)
            {
                await output.WriteLineAsync($"{user.Email} does not use two-factor authentication; nothing changed.");
                return CliContext.Success;
            }
            await services.GetRequiredService<AccountAdministration>().ResetTwoFactorAsync(user,
                services.GetRequiredService<Features.AccountSecurity.TwoFactor>(), "latchkey users reset-two-factor");
            await output.WriteLineAsync($"Two-factor authentication of {user.Email} is off and its sessions have ended." +
                                        (user.TwoFactorRequired ? " It must set it up again at its next sign-in." : ""));
            return CliContext.Success;
        }, cancellationToken));
        return command;
    }

    private static Command Delete(CliContext context)
    {
        var email = EmailArgument();
        var yes = new Option<bool>("--yes") { Description = "Delete without asking. Without it the command only shows what would be removed." };
        var json = JsonOption();
        var command = new Command("delete",
            "Delete an account and everything it owns (API keys, apps, credentials, MCP servers, webhooks). Shows what goes first; --yes deletes.")
            { email, yes, json };
        command.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var user = await UserCommands.FindAsync(services, parse.GetValue(email)!, parse.InvocationConfiguration.Error);
            if (user is null)
            {
                return CliContext.Failure;
            }
            var deletion = services.GetRequiredService<AccountDeletion>();
            var confirmed = parse.GetValue(yes);
            var plan = confirmed ? await deletion.DeleteAsync(user, "latchkey users delete", ct) : await deletion.PlanAsync(user.Id, ct);
            if (parse.GetValue(json))
            {
                await WriteJsonAsync(output, new { email = user.Email, id = user.Id, deleted = confirmed, removes = plan });
                return CliContext.Success;
            }
            await output.WriteLineAsync(confirmed ? $"Deleted {user.Email} ({user.Id}), with:" : $"Deleting {user.Email} ({user.Id}) removes:");
            foreach (var line in plan.Lines())
            {
                await output.WriteLineAsync($"  - {line}");
            }
            await output.WriteLineAsync(confirmed
                ? "Its security log stays until SecurityEvents:RetentionDays removes it."
                : $"Nothing was deleted. To delete: {CliInvocation.Of($"users delete {user.Email} --yes")}");
            return CliContext.Success;
        }, cancellationToken));
        return command;
    }

    private static Task WriteJsonAsync(TextWriter output, object value) => output.WriteLineAsync(JsonSerializer.Serialize(value, Json));
}

using System.CommandLine;
using System.Text.Json;
using Latchkey.Features.Accounts;
using Latchkey.Features.SecurityEvents;
using Latchkey.Storage;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;

namespace Latchkey.Cli;

/// <summary>
/// <c>latchkey users list|show|reset-password|grant-admin|revoke-admin</c>: looking after accounts
/// from the server's machine. <c>--json</c> prints what a script reads (snake_case, one document).
/// </summary>
internal static class UserAdminCommands
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
    };

    private const int ListLimit = 500;

    internal sealed record UserSummary(string Id, string Email, string Name, string TimeZone, DateTimeOffset CreatedAt, bool EmailConfirmed,
        string Status, DateTimeOffset? LockedUntil, IReadOnlyList<string> Roles);

    internal sealed record UserDetails(UserSummary User, int ActiveApiKeys, int OwnedApps, int ValidAuthorizations, int Credentials, int McpServers);

    public static IEnumerable<Command> Create(CliContext context)
    {
        yield return List(context);
        yield return Show(context);
        yield return ResetPassword(context);
        yield return SetDisabled(context, disable: true);
        yield return SetDisabled(context, disable: false);
        yield return SetAdmin(context, grant: true);
        yield return SetAdmin(context, grant: false);
    }

    private static Option<bool> JsonOption() => new("--json") { Description = "Print JSON (snake_case) for scripts instead of a table." };

    private static Argument<string> EmailArgument() => new("email") { Description = "The account's e-mail address." };

    private static Command List(CliContext context)
    {
        var search = new Option<string?>("--search") { Description = "Only accounts whose e-mail address or name contains this text (any case)." };
        var json = JsonOption();
        var list = new Command("list", $"List accounts (at most {ListLimit}, oldest first).") { search, json };
        list.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var db = services.GetRequiredService<LatchkeyDbContext>();
            var query = db.Users.AsNoTracking();
            if (parse.GetValue(search) is { Length: > 0 } text)
            {
                var pattern = text.Trim().ToUpperInvariant();
                // The normalized columns are upper case, so one comparison works the same on SQLite and
                // PostgreSQL. ToUpper here is SQL's upper(), not .NET's (the culture rules do not apply).
#pragma warning disable CA1304, CA1311, CA1862
                query = query.Where(u => u.NormalizedEmail!.Contains(pattern) || u.DisplayName.ToUpper().Contains(pattern));
#pragma warning restore CA1304, CA1311, CA1862
            }
            var users = await query.OrderBy(u => u.CreatedAt).ThenBy(u => u.Id).Take(ListLimit).ToListAsync(ct);
            var summaries = await SummarizeAsync(services, users, ct);
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
                await output.WriteLineAsync($"{user.Email,-36} {CliContext.Truncate(user.Name, 24),-24} {user.CreatedAt:yyyy-MM-dd} {StatusText(user),-24} {string.Join(',', user.Roles)}");
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
            var db = services.GetRequiredService<LatchkeyDbContext>();
            var summary = (await SummarizeAsync(services, [user], ct))[0];
            var details = new UserDetails(summary,
                await db.ApiKeys.CountAsync(k => k.UserId == user.Id && k.RevokedAt == null, ct),
                await db.OAuthApplications.CountAsync(a => a.OwnerId == user.Id, ct),
                await db.OAuthAuthorizations.CountAsync(a => a.Subject == user.Id && a.Status == OpenIddict.Abstractions.OpenIddictConstants.Statuses.Valid, ct),
                await db.BrokerCredentials.CountAsync(c => c.AccountId == user.Id, ct),
                await db.McpServers.CountAsync(s => s.OwnerId == user.Id, ct));
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
                  Status          : {StatusText(summary)}
                  Roles           : {(summary.Roles.Count == 0 ? "none" : string.Join(", ", summary.Roles))}
                  API keys        : {details.ActiveApiKeys} active
                  OAuth apps      : {details.OwnedApps} owned
                  Authorizations  : {details.ValidAuthorizations} valid (apps it signed in to)
                  Credentials     : {details.Credentials} stored
                  MCP servers     : {details.McpServers}
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
        var reset = new Command("reset-password",
            "Set a new password for an account (for someone locked out of their e-mail). Its other sessions end within five minutes and a lock-out ends.")
            { email, passwordStdin };
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
            var users = services.GetRequiredService<UserManager<LatchkeyUser>>();
            // The reset path validates the password and changes the security stamp (the other sessions end).
            var result = await users.ResetPasswordAsync(user, await users.GeneratePasswordResetTokenAsync(user), password);
            if (!result.Succeeded)
            {
                await CliContext.WriteErrorsAsync(error, "The password was not changed:", new Dictionary<string, string[]>
                {
                    ["password"] = [.. result.Errors.Select(e => e.Description)],
                });
                return CliContext.Failure;
            }
            // A lock-out after failed sign-ins ends; a disabled account stays disabled ('users enable').
            await AccountDisabling.EndLockOutAfterResetAsync(users, user);
            await output.WriteLineAsync($"The password of {user.Email} is changed; its other sessions end within five minutes.");
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
        var command = new Command(disable ? "disable" : "enable", disable
            ? "Disable an account: it cannot sign in, its API keys are refused (kept, not revoked), its sessions end within five minutes, " +
              "and every app's sign-in and token of it is revoked."
            : "Enable a disabled account again (its API keys work again; apps must be authorized again).") { email };
        command.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var user = await UserCommands.FindAsync(services, parse.GetValue(email)!, parse.InvocationConfiguration.Error);
            if (user is null)
            {
                return CliContext.Failure;
            }
            if (AccountDisabling.IsDisabled(user) == disable)
            {
                await output.WriteLineAsync($"{user.Email} is already {(disable ? "disabled" : "enabled")}; nothing changed.");
                return CliContext.Success;
            }
            var users = services.GetRequiredService<UserManager<LatchkeyUser>>();
            var securityEvents = services.GetRequiredService<SecurityEventLog>();
            if (!disable)
            {
                await users.SetLockoutEndDateAsync(user, null);
                await users.ResetAccessFailedCountAsync(user);
                securityEvents.Record(user.Id, SecurityEventTypes.AccountEnabled, detail: "latchkey users enable");
                await output.WriteLineAsync($"{user.Email} is enabled: it can sign in, and its API keys work again. Apps it used must be authorized again.");
                return CliContext.Success;
            }
            await users.SetLockoutEnabledAsync(user, true);
            await users.SetLockoutEndDateAsync(user, AccountDisabling.Until);
            // Browser sessions check the stamp every five minutes.
            await users.UpdateSecurityStampAsync(user);
            var authorizations = await services.GetRequiredService<IOpenIddictAuthorizationManager>().RevokeBySubjectAsync(user.Id, ct);
            var tokens = await services.GetRequiredService<IOpenIddictTokenManager>().RevokeBySubjectAsync(user.Id, ct);
            securityEvents.Record(user.Id, SecurityEventTypes.AccountDisabled, detail: $"latchkey users disable: {authorizations} app sign-in(s), {tokens} token(s) revoked");
            await output.WriteLineAsync($"{user.Email} is disabled: it cannot sign in, its API keys are refused, its sessions end within five minutes; " +
                                        $"{authorizations} app sign-in(s) and {tokens} token(s) revoked.");
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
            var users = services.GetRequiredService<UserManager<LatchkeyUser>>();
            var roles = services.GetRequiredService<RoleManager<IdentityRole>>();
            if (grant && !await roles.RoleExistsAsync(AccountRoles.Admin))
            {
                await roles.CreateAsync(new IdentityRole(AccountRoles.Admin));
            }
            var holds = await users.IsInRoleAsync(user, AccountRoles.Admin);
            if (holds == grant)
            {
                await output.WriteLineAsync($"{user.Email} {(grant ? "is already" : "is not")} an administrator; nothing changed.");
                return CliContext.Success;
            }
            var result = grant ? await users.AddToRoleAsync(user, AccountRoles.Admin) : await users.RemoveFromRoleAsync(user, AccountRoles.Admin);
            if (!result.Succeeded)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync("The role was not changed: " + string.Join(" ", result.Errors.Select(e => e.Description)));
                return CliContext.Failure;
            }
            // Sessions pick up the new role at their next security-stamp check (within five minutes).
            await users.UpdateSecurityStampAsync(user);
            await output.WriteLineAsync(grant ? $"{user.Email} is now an administrator." : $"{user.Email} is no longer an administrator.");
            return CliContext.Success;
        }, cancellationToken));
        return command;
    }

    private static async Task<List<UserSummary>> SummarizeAsync(IServiceProvider services, IReadOnlyList<LatchkeyUser> users, CancellationToken cancellationToken)
    {
        var db = services.GetRequiredService<LatchkeyDbContext>();
        var ids = users.Select(u => u.Id).ToList();
        var roles = await (from userRole in db.UserRoles
                           join role in db.Roles on userRole.RoleId equals role.Id
                           where ids.Contains(userRole.UserId)
                           select new { userRole.UserId, role.Name }).ToListAsync(cancellationToken);
        var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
        return [.. users.Select(u =>
        {
            var disabled = AccountDisabling.IsDisabled(u);
            var locked = !disabled && u.LockoutEnabled && u.LockoutEnd is { } end && end > now;
            return new UserSummary(u.Id, u.Email ?? "", u.DisplayName, u.TimeZone, u.CreatedAt, u.EmailConfirmed,
                disabled ? "disabled" : locked ? "locked" : "active", locked ? u.LockoutEnd : null,
                [.. roles.Where(r => r.UserId == u.Id && r.Name is not null).Select(r => r.Name!).Order(StringComparer.Ordinal)]);
        })];
    }

    private static string StatusText(UserSummary user) => user.LockedUntil is { } until ? $"locked until {until:yyyy-MM-dd HH:mm}" : user.Status;
}

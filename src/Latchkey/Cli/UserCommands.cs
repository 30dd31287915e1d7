using System.CommandLine;
using Latchkey.Features.Accounts;
using Microsoft.AspNetCore.Identity;

namespace Latchkey.Cli;

/// <summary>
/// <c>latchkey users create</c>: make an account without the sign-up page (the first user, or when
/// sign-up is closed); the other <c>users</c> commands are in <see cref="UserAdminCommands"/>.
/// </summary>
public static class UserCommands
{
    public static Command Create(CliContext context)
    {
        var email = new Option<string>("--email") { Description = "E-mail address; the user signs in with it.", Required = true };
        var name = new Option<string>("--name") { Description = "Display name.", Required = true };
        var timeZone = new Option<string>("--timezone") { Description = "IANA time zone, such as Europe/Berlin.", DefaultValueFactory = _ => "UTC" };
        var passwordStdin = new Option<bool>("--password-stdin")
        {
            Description = "Read the password from standard input. Without it a strong password is generated and printed once.",
        };

        var create = new Command("create", "Create a user account.") { email, name, timeZone, passwordStdin };
        create.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var generated = !parse.GetValue(passwordStdin);
            var password = await NewPasswordAsync(context, generated, ct);

            var registration = services.GetRequiredService<AccountRegistration>();
            // The operator vouches for the address: the account needs no confirmation e-mail (Accounts:RequireConfirmedEmail).
            var result = await registration.RegisterAsync(parse.GetValue(email)!, parse.GetValue(name)!, parse.GetValue(timeZone), password, emailConfirmed: true);
            if (!result.Succeeded)
            {
                await CliContext.WriteErrorsAsync(parse.InvocationConfiguration.Error, "The user was not created:", result.Errors);
                return CliContext.Failure;
            }

            await output.WriteLineAsync($"Created user {result.User.Email} ({result.User.Id}).");
            if (generated)
            {
                await output.WriteLineAsync($"Password: {password}");
                await output.WriteLineAsync("This password is shown only now. Sign in at /account/sign-in.");
            }
            return CliContext.Success;
        }, cancellationToken));

        var users = new Command("users", "Manage user accounts.") { create };
        foreach (var command in UserAdminCommands.Create(context))
        {
            users.Add(command);
        }
        return users;
    }

    /// <summary>A generated password (24 characters, to be shown once), or the first line of standard input.</summary>
    internal static async Task<string> NewPasswordAsync(CliContext context, bool generate, CancellationToken cancellationToken) => generate
        ? AccountPasswords.Generate()
        : (await context.Input.ReadLineAsync(cancellationToken))?.TrimEnd('\r', '\n') ?? "";

    /// <summary>Finds a user by e-mail for commands that act on someone's behalf.</summary>
    internal static async Task<LatchkeyUser?> FindAsync(IServiceProvider services, string email, TextWriter error)
    {
        var user = await services.GetRequiredService<UserManager<LatchkeyUser>>().FindByEmailAsync(email.Trim());
        if (user is null)
        {
            await error.WriteLineAsync($"No user has the e-mail address '{email}'. Create one with '{CliInvocation.Of("users create")}'.");
        }
        return user;
    }
}

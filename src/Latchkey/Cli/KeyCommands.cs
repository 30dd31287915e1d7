using System.CommandLine;
using Latchkey.Features.ApiKeys;

namespace Latchkey.Cli;

/// <summary><c>latchkey keys create|list|revoke</c>: API keys for a user.</summary>
public static class KeyCommands
{
    public static Command Create(CliContext context)
    {
        return new Command("keys", "Manage a user's API keys.")
        {
            CreateCommand(context),
            ListCommand(context),
            RevokeCommand(context),
        };
    }

    private static Option<string> UserOption() =>
        new("--user") { Description = "E-mail address of the key's owner.", Required = true };

    private static Command CreateCommand(CliContext context)
    {
        var user = UserOption();
        var name = new Option<string>("--name") { Description = "A name to tell the key apart.", Required = true };
        var scopes = new Option<string[]>("--scope")
        {
            Description = "A scope to grant; repeat for several (listed below).",
            Required = true,
            AllowMultipleArgumentsPerToken = true,
        };
        var expiresInDays = new Option<int?>("--expires-in-days") { Description = "Days until the key expires; without it the key does not expire." };
        expiresInDays.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int?>() is <= 0 or > 3650)
            {
                result.AddError("--expires-in-days must be between 1 and 3650.");
            }
        });

        var create = new Command("create", "Create an API key; it is printed once.") { user, name, scopes, expiresInDays };
        context.AddHelpReference(create, HelpLists.Scopes(withOpenIdScopes: false));
        create.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var owner = await UserCommands.FindAsync(services, parse.GetValue(user)!, error);
            if (owner is null)
            {
                return CliContext.Failure;
            }
            var days = parse.GetValue(expiresInDays);
            var expiresAt = days is null ? (DateTimeOffset?)null : services.GetRequiredService<TimeProvider>().GetUtcNow().AddDays(days.Value);
            var requested = AppCommands.SplitList(parse.GetValue(scopes));

            var (created, errors) = await services.GetRequiredService<ApiKeyService>()
                .CreateAsync(owner.Id, parse.GetValue(name), requested, expiresAt, ct);
            if (created is null)
            {
                await CliContext.WriteErrorsAsync(error, "The key was not created:", errors);
                return CliContext.Failure;
            }
            await output.WriteLineAsync($"Created API key {created.Key.Id} '{created.Key.Name}' with scopes {created.Key.Scopes}" +
                                        (created.Key.ExpiresAt is { } e ? $", expiring {e:u}." : ", not expiring."));
            await output.WriteLineAsync(created.Secret);
            await output.WriteLineAsync("Store it now: the key is shown only once.");
            return CliContext.Success;
        }, cancellationToken));
        return create;
    }

    private static Command ListCommand(CliContext context)
    {
        var user = UserOption();
        var list = new Command("list", "List a user's active API keys.") { user };
        list.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var owner = await UserCommands.FindAsync(services, parse.GetValue(user)!, parse.InvocationConfiguration.Error);
            if (owner is null)
            {
                return CliContext.Failure;
            }
            var keys = await services.GetRequiredService<ApiKeyService>().ListAsync(owner.Id, ct);
            if (keys.Count == 0)
            {
                await output.WriteLineAsync($"{owner.Email} has no active API keys.");
                return CliContext.Success;
            }
            await output.WriteLineAsync($"{"ID",-26} {"NAME",-24} {"PREFIX",-14} {"CREATED",-20} {"LAST USED",-20} {"EXPIRES",-20} SCOPES");
            foreach (var key in keys)
            {
                await output.WriteLineAsync(
                    $"{key.Id,-26} {CliContext.Truncate(key.Name, 24),-24} {key.DisplayPrefix,-14} {Format(key.CreatedAt),-20} {Format(key.LastUsedAt),-20} {Format(key.ExpiresAt),-20} {key.Scopes}");
            }
            return CliContext.Success;
        }, cancellationToken));
        return list;
    }

    private static Command RevokeCommand(CliContext context)
    {
        var user = UserOption();
        var id = new Argument<string>("id") { Description = "The key's id, as 'keys list' shows it." };
        var revoke = new Command("revoke", "Revoke an API key; it stops working at once.") { user, id };
        revoke.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var owner = await UserCommands.FindAsync(services, parse.GetValue(user)!, error);
            if (owner is null)
            {
                return CliContext.Failure;
            }
            var keyId = parse.GetValue(id)!;
            if (!await services.GetRequiredService<ApiKeyService>().RevokeAsync(owner.Id, keyId, ct))
            {
                await error.WriteLineAsync($"{owner.Email} has no active API key '{keyId}'.");
                return CliContext.Failure;
            }
            await output.WriteLineAsync($"Revoked API key {keyId}.");
            return CliContext.Success;
        }, cancellationToken));
        return revoke;
    }

    private static string Format(DateTimeOffset? value) => value is { } v ? v.UtcDateTime.ToString("yyyy-MM-dd HH:mm'Z'", System.Globalization.CultureInfo.InvariantCulture) : "-";
}

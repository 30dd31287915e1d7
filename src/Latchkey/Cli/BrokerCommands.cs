using System.CommandLine;
using Latchkey.Features.Broker.Credentials;
using Latchkey.Features.Broker.Providers;
using Latchkey.Features.Broker.Vault;
using Latchkey.Features.KeyProtection;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Cli;

/// <summary><c>latchkey providers</c>, <c>latchkey credentials</c> and <c>latchkey vault</c>: the credential broker.</summary>
public static class BrokerCommands
{
    public static IEnumerable<Command> Create(CliContext context)
    {
        yield return Providers(context);
        yield return Credentials(context);
        yield return VaultCommand(context);
    }

    private static Command Providers(CliContext context)
    {
        var catalog = new Command("catalog", "List the built-in provider catalog.");
        catalog.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, _) =>
        {
            foreach (var provider in services.GetRequiredService<ProviderCatalog>().All)
            {
                var template = provider.Template.Count == 0 ? "" : $"  (needs: {string.Join(", ", provider.Template.Keys)})";
                await output.WriteLineAsync($"{provider.Key,-12} {provider.Name,-16} pkce={(provider.Pkce ? "yes" : "no"),-4} refresh={(provider.Refreshable ? "yes" : "no"),-4}{template}");
            }
            return CliContext.Success;
        }, cancellationToken, migrate: false));

        var list = new Command("list", "List the provider instances (deployment-wide and per account).");
        list.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var db = services.GetRequiredService<Latchkey.Storage.LatchkeyDbContext>();
            var all = await db.BrokerProviders.AsNoTracking().Include(p => p.Owner).OrderBy(p => p.Id).ToListAsync(ct);
            if (all.Count == 0)
            {
                await output.WriteLineAsync($"No providers yet. Add one with '{CliInvocation.Of("providers create")}' or POST /mcp/providers.");
            }
            foreach (var provider in all)
            {
                await output.WriteLineAsync($"{provider.Id,-28} {provider.Name,-20} client_id={provider.ClientId,-24} owner={provider.Owner?.Email ?? "(deployment)"}");
            }
            return CliContext.Success;
        }, cancellationToken));

        var key = new Option<string>("--provider") { Description = "A catalog key (listed below), or 'custom' with --definition.", Required = true };
        var clientId = new Option<string?>("--client-id") { Description = "The OAuth client id registered with the provider (OAuth providers)." };
        var secretStdin = new Option<bool>("--client-secret-stdin") { Description = "Read the client secret from standard input (OAuth providers; keeps it out of shell history)." };
        var template = new Option<string[]>("--template") { Description = "A template value as name=value (for example shop=acme); repeat for several." };
        var name = new Option<string?>("--name") { Description = "A display name (defaults to the catalog's or the definition's name)." };
        var definitionFile = new Option<FileInfo?>("--definition") { Description = "A custom provider's definition: a JSON file with the fields of docs/broker.md#custom-providers." };
        var create = new Command("create", "Add a deployment-wide provider instance: a catalog entry, or a custom provider from a definition file.")
            { key, clientId, secretStdin, template, name, definitionFile };
        context.AddHelpReference(create, HelpLists.Providers);
        create.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            ProviderDefinition? custom = null;
            if (parse.GetValue(definitionFile) is { } file)
            {
                try
                {
                    custom = System.Text.Json.JsonSerializer.Deserialize<ProviderDefinition>(await File.ReadAllTextAsync(file.FullName, ct), ProviderCatalog.Json);
                }
                catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
                {
                    await error.WriteLineAsync($"Cannot read the definition {file.FullName}: {exception.Message}");
                    return CliContext.ConfigurationError;
                }
            }
            string? secret = null;
            if (parse.GetValue(secretStdin))
            {
                secret = (await context.Input.ReadLineAsync(ct))?.Trim() ?? "";
            }
            else if (parse.GetValue(clientId) is not null)
            {
                await error.WriteLineAsync("Pass --client-secret-stdin and send the client secret on standard input.");
                return CliContext.ConfigurationError;
            }
            var values = (parse.GetValue(template) ?? []).Select(t => t.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
            var (created, problem) = await services.GetRequiredService<ProviderService>()
                .CreateAsync(null, new ProviderRequest(parse.GetValue(key), parse.GetValue(clientId), secret, parse.GetValue(name), values, custom), ct);
            if (created is null)
            {
                await error.WriteLineAsync(problem);
                return CliContext.Failure;
            }
            await output.WriteLineAsync($"Created {created.Id} ({created.Name}).");
            return CliContext.Success;
        }, cancellationToken));

        return new Command("providers", "Providers the broker connects to.") { catalog, list, create };
    }

    private static Command Credentials(CliContext context)
    {
        var user = new Option<string>("--user") { Description = "E-mail address of the account.", Required = true };
        var list = new Command("list", "List an account's stored credentials (metadata only).") { user };
        list.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var owner = await UserCommands.FindAsync(services, parse.GetValue(user)!, parse.InvocationConfiguration.Error);
            if (owner is null)
            {
                return CliContext.Failure;
            }
            var credentials = await services.GetRequiredService<CredentialService>().ListAsync(owner.Id, ct);
            if (credentials.Count == 0)
            {
                await output.WriteLineAsync($"{owner.Email} has no credentials.");
            }
            foreach (var credential in credentials)
            {
                await output.WriteLineAsync($"{credential.Id,-22} {credential.ProviderInstanceId,-26} {credential.Status,-13} {credential.ExternalAccountLabel ?? "-",-20} expires {credential.ExpiresAt?.ToString("u", System.Globalization.CultureInfo.InvariantCulture) ?? "never"}");
            }
            return CliContext.Success;
        }, cancellationToken));
        return new Command("credentials", "Third-party credentials stored by the broker.") { list };
    }

    private static Command VaultCommand(CliContext context)
    {
        var to = new Option<string?>("--to") { Description = "The id of a master key the provider already has (Vault:MasterKeys, or the key file) to rotate to." };
        var rotate = new Command("rotate-key",
            "Rotate the master key: the vault's data keys are re-wrapped and the Data Protection key ring is re-encrypted under the new one. " +
            "Stored secrets are not touched, so running servers keep working.") { to };
        rotate.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var masterKeys = services.GetRequiredService<MasterKeys>();
            string newId;
            if (parse.GetValue(to) is { } id)
            {
                masterKeys.Activate(id);
                newId = id;
            }
            else if (masterKeys.Provider is IMasterKeyGenerator)
            {
                newId = masterKeys.AddKey();
            }
            else
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync(
                    $"Master keys come from {masterKeys.Source}: add the new key there, then run '{CliInvocation.Of("vault rotate-key --to <id>")}' and set Vault:ActiveMasterKeyId to it.");
                return CliContext.ConfigurationError;
            }
            var rewrapped = await services.GetRequiredService<SecretVault>().RewrapAsync(ct);
            var keyRing = await services.GetRequiredService<KeyRingAtRest>().ProtectAsync(reEncrypt: true, ct);
            await output.WriteLineAsync(
                $"Master key {newId} is active; re-wrapped {rewrapped} vault data key(s) and re-encrypted {keyRing.ReEncrypted + keyRing.Encrypted} Data Protection key element(s).");
            await output.WriteLineAsync(
                "Keep the earlier master keys: servers that are running read with them until they restart, and backups made before now need them.");
            return CliContext.Success;
        }, cancellationToken));
        return new Command("vault", "The vault's master keys.") { rotate };
    }
}

using System.CommandLine;
using Latchkey.Features.Mcp;
using Latchkey.Features.Mcp.Policies;

namespace Latchkey.Cli;

/// <summary><c>latchkey mcp policy list|set|remove</c>: the per-tool policies of an account's MCP servers.</summary>
public static class McpCommands
{
    public static Command Create(CliContext context)
    {
        var user = new Option<string>("--user") { Description = "E-mail address of the server's owner.", Required = true };
        var serverId = new Option<string>("--server") { Description = "The MCP server's id (mcp_…).", Required = true };
        var tool = new Option<string>("--tool") { Description = "A tool name, or a pattern in which * stands for any run of characters (delete_*).", Required = true };

        var list = new Command("list", "Show a server's default tool policy and its per-tool policies.") { user, serverId };
        list.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            if (await FindServerAsync(services, parse, user, serverId, ct) is not { } server)
            {
                return CliContext.Failure;
            }
            await output.WriteLineAsync($"{server.Name} ({server.Id}): tools no policy names are {server.DefaultToolPolicy}.");
            foreach (var policy in ToolPolicyService.List(server).Policies)
            {
                var rules = string.Join("; ", policy.ArgumentRules.Select(r => $"{r.Argument} ~ {r.Pattern}"));
                await output.WriteLineAsync($"{policy.Tool,-28} {policy.Action,-17} scope={policy.RequiredScope ?? "-",-12} {(rules.Length > 0 ? "rules: " + rules : "")}".TrimEnd());
            }
            return CliContext.Success;
        }, cancellationToken));

        var action = new Option<string>("--action") { Description = "allow, deny or require_approval.", Required = true };
        var scope = new Option<string?>("--scope") { Description = "A scope the caller's token or key must hold for the tool." };
        var rule = new Option<string[]>("--rule") { Description = "An argument rule as argument=pattern (a regular expression the whole value must match); repeat for several." };
        var set = new Command("set", "Set the policy of a tool or pattern.") { user, serverId, tool, action, scope, rule };
        set.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            if (await FindServerAsync(services, parse, user, serverId, ct) is not { } server)
            {
                return CliContext.Failure;
            }
            var rules = new List<ArgumentRule>();
            foreach (var text in parse.GetValue(rule) ?? [])
            {
                if (text.Split('=', 2) is not [var argument, var pattern])
                {
                    await parse.InvocationConfiguration.Error.WriteLineAsync($"--rule {text}: write it as argument=pattern.");
                    return CliContext.ConfigurationError;
                }
                rules.Add(new ArgumentRule(argument, pattern));
            }
            var (policy, error) = await services.GetRequiredService<ToolPolicyService>().SetAsync(server, parse.GetValue(tool)!,
                new ToolPolicyRequest(parse.GetValue(action), parse.GetValue(scope), rules), ct);
            if (policy is null)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync(error!.Message);
                return CliContext.Failure;
            }
            await output.WriteLineAsync($"{server.Name}: {policy.Tool} is now {policy.Action}" + (policy.RequiredScope is { } s ? $", needing {s}" : "") +
                (rules.Count > 0 ? $", with {rules.Count} argument rule(s)" : "") + ".");
            return CliContext.Success;
        }, cancellationToken));

        var remove = new Command("remove", "Remove the policy of a tool or pattern (its calls then follow a matching pattern or the server's default).") { user, serverId, tool };
        remove.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            if (await FindServerAsync(services, parse, user, serverId, ct) is not { } server)
            {
                return CliContext.Failure;
            }
            if (!await services.GetRequiredService<ToolPolicyService>().RemoveAsync(server, parse.GetValue(tool)!, ct))
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync($"No policy names {parse.GetValue(tool)} on {server.Name}.");
                return CliContext.Failure;
            }
            await output.WriteLineAsync($"{server.Name}: removed the policy of {parse.GetValue(tool)}.");
            return CliContext.Success;
        }, cancellationToken));

        return new Command("mcp", "MCP servers behind the gateway.") { new Command("policy", "Per-tool policies: allow, deny or require approval.") { list, set, remove } };
    }

    private static async Task<McpServer?> FindServerAsync(IServiceProvider services, ParseResult parse, Option<string> user, Option<string> serverId, CancellationToken ct)
    {
        var error = parse.InvocationConfiguration.Error;
        var owner = await UserCommands.FindAsync(services, parse.GetValue(user)!, error);
        if (owner is null)
        {
            return null;
        }
        var server = await services.GetRequiredService<McpServerService>().FindAsync(owner.Id, parse.GetValue(serverId)!, ct);
        if (server is null)
        {
            await error.WriteLineAsync($"{owner.Email} has no MCP server {parse.GetValue(serverId)}.");
        }
        return server;
    }
}

using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;

namespace Latchkey.Cli;

/// <summary>
/// The <c>latchkey</c> command line. Every command builds the same application as the server
/// (same configuration, same services) but only <c>serve</c> listens for requests.
/// </summary>
public static class LatchkeyCommandLine
{
    public static Task<int> InvokeAsync(
        string[] args,
        Action<WebApplicationBuilder>? configure = null,
        TextWriter? output = null,
        TextWriter? error = null,
        TextReader? input = null,
        CancellationToken cancellationToken = default)
    {
        var context = new CliContext(configure, input ?? Console.In);
        var root = new RootCommand("Latchkey: identity and credential hub for AI-agent platforms. With no command, runs the server.");
        ServeCommand.Configure(root, context, isDefault: true);
        root.Add(ServeCommand.Create(context));
        root.Add(DatabaseCommands.Create(context));
        root.Add(UserCommands.Create(context));
        root.Add(KeyCommands.Create(context));
        root.Add(AppCommands.Create(context));
        root.Add(CleanupCommand.Create(context));
        root.Add(ServerKeyCommands.Create(context));
        root.Add(TestClientCommand.Create());
        root.Add(SampleMcpServerCommand.Create());
        foreach (var command in BrokerCommands.Create(context))
        {
            root.Add(command);
        }
        root.Add(McpCommands.Create(context));
        root.Add(OpenApiCommands.Create(context));
        foreach (var command in BackupCommands.Create(context))
        {
            root.Add(command);
        }

        var help = root.Options.OfType<HelpOption>().Single();
        help.Action = new HelpWithReferences((HelpAction)help.Action!, context);

        return InvokeParsedAsync(root.Parse(args), output ?? Console.Out, error ?? Console.Error, cancellationToken);
    }

    private static async Task<int> InvokeParsedAsync(ParseResult parsed, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        // System.CommandLine reports unknown tokens only when the root command does, and the root
        // (the server) passes them on to the web host (--urls ...): every other command refuses them here.
        if (parsed.UnmatchedTokens.Count > 0 && parsed.CommandResult.Command.TreatUnmatchedTokensAsErrors && parsed.Action is not HelpWithReferences)
        {
            foreach (var token in parsed.UnmatchedTokens)
            {
                await error.WriteLineAsync($"Unrecognized command or argument '{token}'.");
            }
            await error.WriteLineAsync($"Run '{CliInvocation.Of(CommandPath(parsed.CommandResult) + " --help")}' to see its options.");
            return CliContext.UsageError;
        }
        var exitCode = await parsed.InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, cancellationToken);
        // System.CommandLine answers 1 for a command line it could not parse (a missing subcommand or
        // required option, an unknown option): that is a usage error, 2 as the README says.
        return parsed.Action is ParseErrorAction ? CliContext.UsageError : exitCode;
    }

    private static string CommandPath(CommandResult command)
    {
        var names = new Stack<string>();
        for (var result = command; result.Parent is CommandResult parent; result = parent)
        {
            names.Push(result.Command.Name);
        }
        return string.Join(' ', names);
    }
}

using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;

namespace Latchkey.Cli;

/// <summary>
/// <c>--help</c>: System.CommandLine's usage text, then the lists the command's options refer to
/// (<see cref="CliContext.AddHelpReference"/>). They are read from this server's configuration,
/// so a deployment's own scope catalog is what its operators see, not the built-in one.
/// </summary>
internal sealed class HelpWithReferences(HelpAction usage, CliContext context) : AsynchronousCommandLineAction
{
    // As System.CommandLine's own help: "keys create --help" without the required options is not an error.
    public override bool ClearsParseErrors => true;

    public override async Task<int> InvokeAsync(ParseResult parseResult, CancellationToken cancellationToken = default)
    {
        var exitCode = usage.Invoke(parseResult);
        if (!context.HelpReferences.TryGetValue(parseResult.CommandResult.Command, out var write))
        {
            return exitCode;
        }
        var output = parseResult.InvocationConfiguration.Output;
        try
        {
            await using var app = context.BuildApp();
            await write(app.Services, output);
        }
        catch (Exception exception) when (CliContext.Describe(exception) is { } message)
        {
            await output.WriteLineAsync($"(What this command's options refer to is read from the server's configuration, which failed: {message})");
        }
        return exitCode;
    }
}

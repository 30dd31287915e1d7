using System.CommandLine;

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

        var parsed = root.Parse(args);
        return parsed.InvokeAsync(new InvocationConfiguration
        {
            Output = output ?? Console.Out,
            Error = error ?? Console.Error,
        }, cancellationToken);
    }
}

using System.CommandLine;
using Latchkey.Features.Operations;

namespace Latchkey.Cli;

/// <summary><c>latchkey cleanup</c>: the background clean-up, run once now.</summary>
public static class CleanupCommand
{
    public static Command Create(CliContext context)
    {
        var cleanup = new Command("cleanup", "Remove expired and revoked tokens and codes, authorizations left without tokens, old broker flow states and security events past their retention, once.");
        cleanup.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var removed = await services.GetRequiredService<Cleanup>().RunAsync(ct);
            await output.WriteLineAsync($"Removed {Cleanup.Describe(removed)}.");
            return CliContext.Success;
        }, cancellationToken));
        return cleanup;
    }
}

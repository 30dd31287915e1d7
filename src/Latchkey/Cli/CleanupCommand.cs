using System.CommandLine;
using Latchkey.Features.AuthorizationServer;

namespace Latchkey.Cli;

/// <summary><c>latchkey cleanup</c>: the background clean-up, run once now.</summary>
public static class CleanupCommand
{
    public static Command Create(CliContext context)
    {
        var cleanup = new Command("cleanup", "Remove expired and revoked tokens and codes, and authorizations left without tokens, once.");
        cleanup.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var (tokens, authorizations) = await services.GetRequiredService<TokenCleanup>().RunAsync(ct);
            await output.WriteLineAsync($"Removed {tokens} tokens and {authorizations} authorizations.");
            return CliContext.Success;
        }, cancellationToken));
        return cleanup;
    }
}

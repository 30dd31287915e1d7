using System.CommandLine;
using Latchkey.Features.AuthorizationServer;

namespace Latchkey.Cli;

/// <summary><c>latchkey cleanup</c>: the background clean-up, run once now.</summary>
public static class CleanupCommand
{
    public static Command Create(CliContext context)
    {
        var cleanup = new Command("cleanup", "Remove expired and revoked tokens and codes, authorizations left without tokens, and old broker flow states, once.");
        cleanup.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var (tokens, authorizations, flows) = await services.GetRequiredService<TokenCleanup>().RunAsync(ct);
            await output.WriteLineAsync($"Removed {tokens} tokens, {authorizations} authorizations and {flows} finished broker flows.");
            return CliContext.Success;
        }, cancellationToken));
        return cleanup;
    }
}

using System.CommandLine;
using Latchkey.Features.AuthorizationServer.Keys;

namespace Latchkey.Cli;

/// <summary><c>latchkey server-keys rotate</c>: new signing and token-encryption keys for the authorization server.</summary>
public static class ServerKeyCommands
{
    public static Command Create(CliContext context)
    {
        var rotate = new Command("rotate",
            $"Add a new signing key (RSA), token-signing key (HMAC) and token-encryption key (AES). Running servers take them up at once; the previous keys stay valid for reading (the newest {ServerKeyRing.KeysKeptPerKind} of each kind are kept in use).");
        rotate.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var ring = services.GetRequiredService<ServerKeyRing>();
            ring.GetOrCreate();
            var (signing, encryption, tokenSigning) = ring.Rotate();
            await output.WriteLineAsync($"Added signing key {signing}, token-signing key {tokenSigning} and encryption key {encryption}.");
            // The command announces the new keys (CliContext flushes the announcement when it ends).
            await output.WriteLineAsync("Running servers sign and encrypt with them from now on. Tokens made with the previous keys stay valid.");
            return CliContext.Success;
        }, cancellationToken));
        return new Command("server-keys", "The authorization server's signing, token-signing and token-encryption keys.") { rotate };
    }
}

using System.Xml;
using System.Xml.Linq;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Features.KeyProtection;

/// <summary>
/// Keeps the Data Protection key ring in the database encrypted under the master keys. At start it
/// encrypts in place the key elements that releases before this one stored in plain text (same
/// keys, so sessions, antiforgery tokens and the server keys they protect stay readable) and
/// refuses to start when the ring is sealed under a master key this server lacks. A master key
/// rotation re-encrypts every element under the new key.
/// </summary>
public sealed partial class KeyRingAtRest(IServiceScopeFactory scopes, MasterKeys masterKeys, ILogger<KeyRingAtRest> logger) : IHostedService
{
    /// <summary>What a pass changed: plain-text elements now encrypted, encrypted ones moved to the active master key.</summary>
    public sealed record Result(int Encrypted, int ReEncrypted);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        Result result;
        try
        {
            result = await ProtectAsync(reEncrypt: false, cancellationToken);
        }
        catch (Exception exception) when (DatabaseUnavailable.Is(exception))
        {
            // Plain-text elements stay readable; the next start encrypts them.
            LogDeferred(logger, exception.GetType().Name, exception.GetBaseException().Message);
            return;
        }
        if (result.Encrypted > 0)
        {
            LogEncrypted(logger, result.Encrypted, masterKeys.ActiveId);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Encrypts plain-text elements and, with <paramref name="reEncrypt"/>, moves elements sealed
    /// under older master keys to the active one. Fails, changing nothing, when an element is
    /// sealed under a master key this process does not have.
    /// </summary>
    public async Task<Result> ProtectAsync(bool reEncrypt, CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LatchkeyDbContext>();
        var rows = await db.DataProtectionKeys.ToListAsync(cancellationToken);
        int encrypted = 0, reEncrypted = 0;
        foreach (var row in rows)
        {
            if (Parse(row.Xml) is not { } key)
            {
                continue;
            }
            var changed = false;
            foreach (var (secret, ciphertext) in KeyRingCiphertext.SealedParts(key).ToList())
            {
                var id = KeyRingCiphertext.MasterKeyIdOf(ciphertext)!;
                if (!masterKeys.Has(id))
                {
                    throw KeyRingCiphertext.MissingMasterKey(id, masterKeys);
                }
                if (reEncrypt && id != masterKeys.ActiveId)
                {
                    secret.ReplaceWith(KeyRingCiphertext.EncryptedSecretFor(KeyRingCiphertext.Open(ciphertext, masterKeys), masterKeys));
                    reEncrypted++;
                    changed = true;
                }
            }
            foreach (var plaintext in KeyRingCiphertext.PlaintextParts(key))
            {
                plaintext.ReplaceWith(KeyRingCiphertext.EncryptedSecretFor(plaintext, masterKeys));
                encrypted++;
                changed = true;
            }
            if (changed)
            {
                row.Xml = key.ToString(SaveOptions.DisableFormatting);
            }
        }
        await db.SaveChangesAsync(cancellationToken);
        return new Result(encrypted, reEncrypted);
    }

    private static XElement? Parse(string? xml)
    {
        try
        {
            return string.IsNullOrEmpty(xml) ? null : XElement.Parse(xml);
        }
        catch (XmlException)
        {
            // Not ours to repair: Data Protection skips (and logs) an element it cannot read.
            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Encrypted {Count} Data Protection key element(s) stored in plain text by an earlier release, under master key {MasterKeyId}")]
    private static partial void LogEncrypted(ILogger logger, int count, string masterKeyId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The Data Protection key ring could not be checked at start ({Error}: {Message}); it is checked at the next start")]
    private static partial void LogDeferred(ILogger logger, string error, string message);
}

using System.Security.Cryptography;
using System.Text;
using Latchkey.Features.Accounts;
using Latchkey.Features.Broker.Vault;
using Latchkey.Storage;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Identity.EntityFrameworkCore;

namespace Latchkey.Features.AccountSecurity;

/// <summary>
/// Identity's EF Core user store, with the second factor's secrets kept as the ground rules ask:
/// Identity stores an account's authenticator key and recovery codes as plain text in
/// <c>AspNetUserTokens</c>. Here every token value is encrypted with the vault (AES-256-GCM under a
/// data key named in the value, bound to the account and the token's name), and recovery codes are
/// kept only as SHA-256 hashes (they are checked, never shown again).
/// </summary>
public sealed class ProtectedUserStore(LatchkeyDbContext context, SecretVault vault, IdentityErrorDescriber? describer = null)
    : UserStore<LatchkeyUser, IdentityRole, LatchkeyDbContext>(context, describer)
{
    public override async Task SetTokenAsync(LatchkeyUser user, string loginProvider, string name, string? value, CancellationToken cancellationToken)
    {
        var stored = value is null ? null : await vault.EncryptAsync(value, TokenContext(user, loginProvider, name), cancellationToken);
        await base.SetTokenAsync(user, loginProvider, name, stored, cancellationToken);
    }

    public override async Task<string?> GetTokenAsync(LatchkeyUser user, string loginProvider, string name, CancellationToken cancellationToken)
    {
        var stored = await base.GetTokenAsync(user, loginProvider, name, cancellationToken);
        if (string.IsNullOrEmpty(stored))
        {
            return stored;
        }
        try
        {
            return await vault.DecryptAsync(stored, TokenContext(user, loginProvider, name), cancellationToken);
        }
        catch (CryptographicException)
        {
            // A value this store did not write (or moved from another account's row) counts as none.
            return null;
        }
    }

    public override Task ReplaceCodesAsync(LatchkeyUser user, IEnumerable<string> recoveryCodes, CancellationToken cancellationToken) =>
        base.ReplaceCodesAsync(user, recoveryCodes.Select(RecoveryCodeHash), cancellationToken);

    public override Task<bool> RedeemCodeAsync(LatchkeyUser user, string code, CancellationToken cancellationToken) =>
        base.RedeemCodeAsync(user, RecoveryCodeHash(code), cancellationToken);

    /// <summary>Codes are compared as typed, give or take case, spaces and dashes.</summary>
    internal static string RecoveryCodeHash(string code)
    {
        var normalized = new string([.. code.Where(char.IsLetterOrDigit).Select(char.ToUpperInvariant)]);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(normalized)));
    }

    private static string TokenContext(LatchkeyUser user, string loginProvider, string name) => $"identity-token:{user.Id}:{loginProvider}:{name}";
}

using System.Security.Cryptography;
using Latchkey.Common;

namespace Latchkey.Features.Accounts;

/// <summary>Passwords Latchkey makes up (the CLI's and an administrator's resets): shown once, never stored in the clear.</summary>
public static class AccountPasswords
{
    /// <summary>24 characters of the opaque-secret alphabet: about 143 bits.</summary>
    public static string Generate() => RandomNumberGenerator.GetString(OpaqueSecretFormat.Alphabet, 24);
}

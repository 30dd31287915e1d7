using System.Security.Cryptography;
using Latchkey.Storage;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.IdentityModel.Tokens;

namespace Latchkey.Features.AuthorizationServer.Keys;

/// <summary>Loads the server's keys, generating the first ones when there are none.</summary>
public sealed partial class ServerKeyRing(LatchkeyDbContext db, IDataProtectionProvider dataProtection, TimeProvider time, ILogger<ServerKeyRing> logger)
{
    private readonly IDataProtector _protector = dataProtection.CreateProtector("Latchkey.ServerKeys.v1");

    /// <summary>How many keys of each kind stay in use: the current one and the one it replaced, so tokens made before a rotation stay readable.</summary>
    public const int KeysKeptPerKind = 2;

    /// <summary>The keys in use, newest first; generates the first ones when there are none.</summary>
    public (IReadOnlyList<RsaSecurityKey> Signing, IReadOnlyList<SymmetricSecurityKey> Encryption, IReadOnlyList<SymmetricSecurityKey> TokenSigning) GetOrCreate()
    {
        EnsureExists(ServerKey.Signing, GenerateRsa);
        EnsureExists(ServerKey.Encryption, GenerateSymmetric);
        EnsureExists(ServerKey.TokenSigning, GenerateSymmetric);
        var signing = Load(ServerKey.Signing).Select(key =>
        {
            var rsa = RSA.Create();
            rsa.ImportPkcs8PrivateKey(key.Material, out _);
            return new RsaSecurityKey(rsa) { KeyId = key.Id };
        }).ToList();
        return (signing, LoadSymmetric(ServerKey.Encryption), LoadSymmetric(ServerKey.TokenSigning));
    }

    private List<SymmetricSecurityKey> LoadSymmetric(string kind) =>
        Load(kind).Select(key => new SymmetricSecurityKey(key.Material) { KeyId = key.Id }).ToList();

    /// <summary>Adds a new key of each kind; running nodes on PostgreSQL take them up at once (<see cref="ServerKeySet"/>).</summary>
    public (string SigningKeyId, string EncryptionKeyId, string TokenSigningKeyId) Rotate() =>
        (Insert(ServerKey.Signing, NextId(ServerKey.Signing), GenerateRsa()),
         Insert(ServerKey.Encryption, NextId(ServerKey.Encryption), GenerateSymmetric()),
         Insert(ServerKey.TokenSigning, NextId(ServerKey.TokenSigning), GenerateSymmetric()));

    private static byte[] GenerateRsa()
    {
        using var rsa = RSA.Create(2048);
        return rsa.ExportPkcs8PrivateKey();
    }

    private static byte[] GenerateSymmetric() => RandomNumberGenerator.GetBytes(32);

    private List<(string Id, byte[] Material)> Load(string kind) =>
        db.ServerKeys.AsNoTracking().Where(k => k.Kind == kind).OrderByDescending(k => k.Id).Take(KeysKeptPerKind).ToList()
            .Select(k => (k.Id, _protector.Unprotect(Convert.FromBase64String(k.ProtectedMaterial)))).ToList();

    private string NextId(string kind)
    {
        var newest = db.ServerKeys.AsNoTracking().Where(k => k.Kind == kind).OrderByDescending(k => k.Id).Select(k => k.Id).FirstOrDefault();
        var number = newest is null ? 0 : int.Parse(newest[(kind.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        return $"{kind}-{number + 1:D4}";
    }

    private void EnsureExists(string kind, Func<byte[]> generate)
    {
        if (db.ServerKeys.AsNoTracking().Any(k => k.Kind == kind))
        {
            return;
        }
        // A fixed id for the first key makes concurrent first starts of several nodes agree:
        // one insert wins, the others fail on the primary key and use the winner's key.
        try
        {
            Insert(kind, $"{kind}-0001", generate());
        }
        catch (DbUpdateException)
        {
            db.ChangeTracker.Clear();
        }
    }

    private string Insert(string kind, string id, byte[] material)
    {
        db.ServerKeys.Add(new ServerKey
        {
            Id = id,
            Kind = kind,
            ProtectedMaterial = Convert.ToBase64String(_protector.Protect(material)),
            CreatedAt = time.GetUtcNow(),
        });
        db.SaveChanges();
        LogGenerated(logger, kind, id);
        return id;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Generated the authorization server's {Kind} key {KeyId}")]
    private static partial void LogGenerated(ILogger logger, string kind, string keyId);
}

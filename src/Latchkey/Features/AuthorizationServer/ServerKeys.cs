using System.Security.Cryptography;
using Latchkey.Storage;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Server;

namespace Latchkey.Features.AuthorizationServer;

/// <summary>
/// A signing (RSA) or token-encryption (AES-256) key of the authorization server, generated once
/// and kept in the database so that every node signs and reads the same tokens. The material is
/// protected with ASP.NET Core Data Protection.
/// </summary>
public sealed class ServerKey
{
    public const string Signing = "signing";
    public const string Encryption = "encryption";

    public required string Id { get; init; }
    public required string Kind { get; init; }
    public required string ProtectedMaterial { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
}

internal sealed class ServerKeyConfiguration : IEntityTypeConfiguration<ServerKey>
{
    public void Configure(EntityTypeBuilder<ServerKey> key)
    {
        key.ToTable("server_keys");
        key.HasKey(k => k.Id);
        key.Property(k => k.Id).HasMaxLength(64);
        key.Property(k => k.Kind).HasMaxLength(16).IsRequired();
        key.Property(k => k.ProtectedMaterial).IsRequired();
    }
}

/// <summary>Loads the server's keys, generating the first ones when there are none.</summary>
public sealed partial class ServerKeyRing(LatchkeyDbContext db, IDataProtectionProvider dataProtection, TimeProvider time, ILogger<ServerKeyRing> logger)
{
    private readonly IDataProtector _protector = dataProtection.CreateProtector("Latchkey.ServerKeys.v1");

    public (RsaSecurityKey Signing, SymmetricSecurityKey Encryption) GetOrCreate()
    {
        var signing = GetOrCreate(ServerKey.Signing, () =>
        {
            using var rsa = RSA.Create(2048);
            return rsa.ExportPkcs8PrivateKey();
        });
        var encryption = GetOrCreate(ServerKey.Encryption, () => RandomNumberGenerator.GetBytes(32));

        var rsaKey = RSA.Create();
        rsaKey.ImportPkcs8PrivateKey(signing.Material, out _);
        return (new RsaSecurityKey(rsaKey) { KeyId = signing.Id }, new SymmetricSecurityKey(encryption.Material) { KeyId = encryption.Id });
    }

    private (string Id, byte[] Material) GetOrCreate(string kind, Func<byte[]> generate)
    {
        var existing = db.ServerKeys.AsNoTracking().Where(k => k.Kind == kind).OrderByDescending(k => k.Id).FirstOrDefault();
        if (existing is not null)
        {
            return (existing.Id, _protector.Unprotect(Convert.FromBase64String(existing.ProtectedMaterial)));
        }

        // A fixed id for the first key makes concurrent first starts of several nodes agree:
        // one insert wins, the others fail on the primary key and read the winner's key.
        var material = generate();
        var key = new ServerKey
        {
            Id = $"{kind}-0001",
            Kind = kind,
            ProtectedMaterial = Convert.ToBase64String(_protector.Protect(material)),
            CreatedAt = time.GetUtcNow(),
        };
        try
        {
            db.ServerKeys.Add(key);
            db.SaveChanges();
            LogGenerated(logger, kind, key.Id);
            return (key.Id, material);
        }
        catch (DbUpdateException)
        {
            db.ChangeTracker.Clear();
            var winner = db.ServerKeys.AsNoTracking().Single(k => k.Id == key.Id);
            return (winner.Id, _protector.Unprotect(Convert.FromBase64String(winner.ProtectedMaterial)));
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Generated the authorization server's {Kind} key {KeyId}")]
    private static partial void LogGenerated(ILogger logger, string kind, string keyId);
}

/// <summary>Gives OpenIddict the keys from the database when its options are first built.</summary>
internal sealed class ServerKeyOptionsSetup(IServiceScopeFactory scopes) : IConfigureOptions<OpenIddictServerOptions>
{
    public void Configure(OpenIddictServerOptions options)
    {
        using var scope = scopes.CreateScope();
        var (signing, encryption) = scope.ServiceProvider.GetRequiredService<ServerKeyRing>().GetOrCreate();
        options.SigningCredentials.Add(new SigningCredentials(signing, SecurityAlgorithms.RsaSha256));
        options.EncryptionCredentials.Add(new EncryptingCredentials(encryption, SecurityAlgorithms.Aes256KW, SecurityAlgorithms.Aes256CbcHmacSha512));
    }
}

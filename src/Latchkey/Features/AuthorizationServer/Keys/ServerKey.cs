using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Latchkey.Features.AuthorizationServer.Keys;

/// <summary>
/// A signing (RSA), token-signing (HMAC-SHA256) or token-encryption (AES-256) key of the
/// authorization server, generated once
/// and kept in the database so that every node signs and reads the same tokens. The material is
/// protected with ASP.NET Core Data Protection.
/// </summary>
public sealed class ServerKey
{
    public const string Signing = "signing";
    public const string Encryption = "encryption";

    /// <summary>
    /// Signs the payloads only Latchkey itself reads back (reference access and refresh tokens,
    /// codes): HMAC is far cheaper than RSA on the token endpoint. Identity tokens and JWT access
    /// tokens, which others verify against the published keys, stay RSA.
    /// </summary>
    public const string TokenSigning = "hmac";

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

using Latchkey.Features.Accounts;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using OpenIddict.EntityFrameworkCore.Models;

namespace Latchkey.Features.AuthorizationServer.Stores;

/// <summary>
/// A registered OAuth app (OpenIddict's application entry) with what Latchkey adds: the owner,
/// description, homepage, whether it is enabled. The logo lives in <see cref="OAuthAppLogo"/> so
/// that hot look-ups of the app never load it.
/// </summary>
public sealed class OAuthApplication : OpenIddictEntityFrameworkCoreApplication<string, OAuthAuthorization, OAuthToken>
{
    public OAuthApplication() => Id = Guid.NewGuid().ToString();

    /// <summary>The user who registered the app; null for dynamically registered clients.</summary>
    public string? OwnerId { get; set; }

    public string? Description { get; set; }

    public string? HomepageUrl { get; set; }

    /// <summary>A disabled app's tokens stop working at once and it cannot start new flows.</summary>
    public bool Enabled { get; set; } = true;

    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>Changes when the logo changes, so its URL can be cached forever.</summary>
    public int LogoVersion { get; set; }

    /// <summary>SHA-256 of the RFC 7592 registration access token, for dynamically registered clients.</summary>
    public byte[]? RegistrationAccessTokenHash { get; set; }

    /// <summary>
    /// For a client whose <c>client_id</c> is the URL of its metadata document: when that document
    /// must be fetched again (<see cref="Apps.ClientMetadataDocuments"/>). Null for every other app.
    /// </summary>
    public DateTimeOffset? MetadataDocumentExpiresAt { get; set; }

    public LatchkeyUser? Owner { get; set; }
}

public sealed class OAuthAuthorization : OpenIddictEntityFrameworkCoreAuthorization<string, OAuthApplication, OAuthToken>
{
    public OAuthAuthorization() => Id = Guid.NewGuid().ToString();
}

public sealed class OAuthScope : OpenIddictEntityFrameworkCoreScope<string>
{
    public OAuthScope() => Id = Guid.NewGuid().ToString();
}

public sealed class OAuthToken : OpenIddictEntityFrameworkCoreToken<string, OAuthApplication, OAuthAuthorization>
{
    // Time-ordered ids (UUID v7): new rows go to the end of the primary-key index and clean-up
    // deletes old rows from its start, instead of touching pages all over it.
    public OAuthToken() => Id = Guid.CreateVersion7().ToString();
}

/// <summary>An app's uploaded logo, served from <c>/api/oauth/apps/{client_id}/logo</c>.</summary>
public sealed class OAuthAppLogo
{
    public required string ApplicationId { get; init; }
    public required string ContentType { get; set; }
    public required byte[] Content { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}

internal sealed class OAuthApplicationConfiguration : IEntityTypeConfiguration<OAuthApplication>
{
    public void Configure(EntityTypeBuilder<OAuthApplication> app)
    {
        // OpenIddict allows 100 characters; a metadata document's URL is the client id and may be longer.
        app.Property(a => a.ClientId).HasMaxLength(OAuthAppLimits.ClientIdMaxLength);
        app.Property(a => a.Description).HasMaxLength(OAuthAppLimits.DescriptionMaxLength);
        app.Property(a => a.HomepageUrl).HasMaxLength(OAuthAppLimits.UrlMaxLength);
        app.Property(a => a.RegistrationAccessTokenHash).HasMaxLength(32);
        app.HasIndex(a => a.OwnerId);
        app.HasOne(a => a.Owner).WithMany().HasForeignKey(a => a.OwnerId).OnDelete(DeleteBehavior.Cascade);
    }
}

internal sealed class OAuthTokenConfiguration : IEntityTypeConfiguration<OAuthToken>
{
    public void Configure(EntityTypeBuilder<OAuthToken> token)
    {
        // Clean-up finds expired tokens through this index instead of scanning the table.
        token.HasIndex(t => t.ExpirationDate);

        // OpenIddict indexes tokens on (application, status, subject, type) for its store's lookups by
        // subject and client, which Latchkey never makes (a user's tokens are found and revoked through
        // their authorization). Every issued token is written into that index and every redemption
        // rewrites its status there: it was a tenth of the token writer's time (docs/BENCHMARKS.md).
        // An index on the application alone keeps what uses the key (deleting an app's tokens, the
        // foreign key's checks) and costs a fraction of it.
        var application = token.Metadata.GetNavigations().Single(n => n.Name == nameof(OAuthToken.Application)).ForeignKey.Properties;
        if (token.Metadata.GetIndexes().FirstOrDefault(i => i.Properties.Count == 4 && i.Properties[0] == application[0]) is { } wide)
        {
            token.Metadata.RemoveIndex(wide);
        }
        token.HasIndex(application.Select(p => p.Name).ToArray());
    }
}

internal sealed class OAuthAppLogoConfiguration : IEntityTypeConfiguration<OAuthAppLogo>
{
    public void Configure(EntityTypeBuilder<OAuthAppLogo> logo)
    {
        logo.ToTable("oauth_app_logos");
        logo.HasKey(l => l.ApplicationId);
        logo.Property(l => l.ContentType).HasMaxLength(64);
        logo.HasOne<OAuthApplication>().WithOne().HasForeignKey<OAuthAppLogo>(l => l.ApplicationId).OnDelete(DeleteBehavior.Cascade);
    }
}

public static class OAuthAppLimits
{
    public const int ClientIdMaxLength = 400;
    public const int NameMaxLength = 100;
    public const int DescriptionMaxLength = 1000;
    public const int UrlMaxLength = 2000;
    public const int MaxRedirectUris = 20;
    public const int LogoMaxBytes = 256 * 1024;
}

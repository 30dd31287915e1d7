using System.ComponentModel.DataAnnotations;
using System.Reflection;
using System.Security.Cryptography;
using Latchkey.Cluster;
using Latchkey.Common;
using Latchkey.Features.AuthorizationServer.Tokens;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Core;

namespace Latchkey.Features.AuthorizationServer.Stores;

/// <summary>
/// OpenIddict's application manager with SHA-256 client secrets and a node-wide cache of
/// applications by client id. OpenIddict hashes secrets with PBKDF2 because people may choose
/// them; Latchkey's are server-generated with 256 bits of entropy, where a slow hash adds nothing
/// but cost on every token request.
/// </summary>
public sealed class OAuthApplicationManager(
    IOpenIddictApplicationCache<OAuthApplication> cache,
    ILogger<OpenIddictApplicationManager<OAuthApplication>> logger,
    IOptionsMonitor<OpenIddictCoreOptions> options,
    IOpenIddictApplicationStore<OAuthApplication> store,
    LatchkeyDbContext db,
    SnapshotCache<OAuthApplicationSnapshot> snapshots)
    : OpenIddictApplicationManager<OAuthApplication>(cache, logger, options, store)
{
    /// <summary>Client secrets look like <c>lk_cs_</c> + 43 base62 characters + checksum.</summary>
    public static readonly OpaqueSecretFormat SecretFormat = new("lk_cs_");

    /// <summary>
    /// Every token request looks its client up. A cached copy is attached to this request's
    /// context, unchanged, so OpenIddict's store finds it there (as it would the row it had just
    /// read), and an update made through it is still checked against the row's concurrency token.
    /// </summary>
    public override async ValueTask<OAuthApplication?> FindByClientIdAsync(string identifier, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(identifier);
        if (db.ChangeTracker.Entries<OAuthApplication>().Any(entry => entry.Entity.ClientId == identifier))
        {
            return await base.FindByClientIdAsync(identifier, cancellationToken);
        }
        if (snapshots.TryGet(identifier, out var snapshot))
        {
            var copy = snapshot.Copy();
            db.Attach(copy);
            return copy;
        }
        var revision = snapshots.Revision;
        var application = await base.FindByClientIdAsync(identifier, cancellationToken);
        if (application is not null && db.Entry(application).State == EntityState.Unchanged)
        {
            snapshots.Set(identifier, OAuthApplicationSnapshot.Of(db, application), revision);
        }
        return application;
    }

    protected override ValueTask<string> ObfuscateClientSecretAsync(string secret, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Convert.ToBase64String(SecretHash.Compute(secret)));

    protected override ValueTask<bool> ValidateClientSecretAsync(string secret, string comparand, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(SecretMatches(secret, comparand));

    /// <summary>
    /// Whether <paramref name="secret"/> is the one whose stored hash (Base64 of its SHA-256) is
    /// <paramref name="storedHash"/>. A malformed secret is refused without hashing; the comparison is constant-time.
    /// </summary>
    internal static bool SecretMatches(string secret, string? storedHash)
    {
        if (storedHash is null || !SecretFormat.IsWellFormed(secret))
        {
            return false;
        }
        Span<byte> stored = stackalloc byte[SHA256.HashSizeInBytes];
        return Convert.TryFromBase64String(storedHash, stored, out var written) && written == stored.Length && SecretHash.Matches(stored, secret);
    }
}

/// <summary>
/// The column values of an application as read from the database. Cached entities are never
/// handed out: each request gets its own copy, so nothing one request does to it (EF Core's
/// navigation fix-up, an edit) reaches another.
/// </summary>
public sealed class OAuthApplicationSnapshot
{
    private static PropertyInfo[]? s_columns;
    private readonly object?[] _values;

    private OAuthApplicationSnapshot(object?[] values) => _values = values;

    public static OAuthApplicationSnapshot Of(DbContext db, OAuthApplication application)
    {
        var columns = s_columns ??= db.Model.FindEntityType(typeof(OAuthApplication))!.GetProperties()
            .Select(property => property.PropertyInfo)
            .OfType<PropertyInfo>()
            .Where(property => property.CanWrite)
            .ToArray();
        return new OAuthApplicationSnapshot([.. columns.Select(column => column.GetValue(application))]);
    }

    public OAuthApplication Copy()
    {
        var columns = s_columns!;
        var copy = new OAuthApplication();
        for (var i = 0; i < columns.Length; i++)
        {
            columns[i].SetValue(copy, _values[i]);
        }
        return copy;
    }
}

/// <summary>OpenIddict's token manager, storing reference ids as <see cref="TokenFormats.StoredReferenceId"/> says.</summary>
public sealed class OAuthTokenManager(
    IOpenIddictTokenCache<OAuthToken> cache,
    ILogger<OpenIddictTokenManager<OAuthToken>> logger,
    IOptionsMonitor<OpenIddictCoreOptions> options,
    IOpenIddictTokenStore<OAuthToken> store)
    : OpenIddictTokenManager<OAuthToken>(cache, logger, options, store)
{
    protected override ValueTask<string> ObfuscateReferenceIdAsync(string identifier, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(TokenFormats.StoredReferenceId(identifier));

    /// <summary>
    /// OpenIddict's checks without its look-up of another token with the same reference id, one
    /// query for every token issued or redeemed: reference ids carry 256 random bits, and the
    /// unique index on the column refuses a duplicate regardless.
    /// </summary>
    public override IAsyncEnumerable<ValidationResult> ValidateAsync(OAuthToken token, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(token);
        return Errors(token).ToAsyncEnumerable();

        static IEnumerable<ValidationResult> Errors(OAuthToken token)
        {
            if (string.IsNullOrEmpty(token.Type))
            {
                yield return new ValidationResult("The token type cannot be null or empty.");
            }
            if (string.IsNullOrEmpty(token.Status))
            {
                yield return new ValidationResult("The status cannot be null or empty.");
            }
        }
    }
}

using System.Text.Json;
using Latchkey.Cluster;
using Latchkey.Features.AuthorizationServer.Stores;
using Latchkey.Features.ExternalApi;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Latchkey.Features.AuthorizationServer.Tokens;

/// <summary>
/// Checks access tokens presented to Latchkey's own APIs. An opaque token is one indexed look-up
/// (token, its app and its authorization together); a JWT access token, when that format is
/// configured, goes through OpenIddict's own validation.
/// </summary>
internal sealed class AccessTokenValidator(
    LatchkeyDbContext db,
    TimeProvider time,
    IOptions<AuthorizationServerOptions> options,
    IServiceProvider services,
    SnapshotCache<AccessTokenSnapshot> cache) : IAccessTokenValidator
{
    public async ValueTask<CallerValidation> ValidateAsync(string token, CancellationToken cancellationToken)
    {
        if (TokenFormats.AccessToken.HasPrefix(token))
        {
            return await ValidateOpaqueAsync(token, cancellationToken);
        }
        if (options.Value.UsesJwtAccessTokens && token.Count(c => c == '.') == 2)
        {
            return await ValidateJwtAsync(token, cancellationToken);
        }
        return CallerValidation.Fail("The access token is not valid.");
    }

    private async Task<CallerValidation> ValidateOpaqueAsync(string token, CancellationToken cancellationToken)
    {
        if (!TokenFormats.AccessToken.IsWellFormed(token))
        {
            return CallerValidation.Fail("The access token is malformed.");
        }
        var referenceId = TokenFormats.StoredReferenceId(token);
        if (!cache.TryGet(referenceId, out var snapshot))
        {
            var revision = cache.Revision;
            var entry = await db.OAuthTokens.AsNoTracking()
                .Where(t => t.ReferenceId == referenceId)
                .Select(t => new
                {
                    t.Type,
                    t.Status,
                    t.Subject,
                    t.ExpirationDate,
                    t.Properties,
                    ClientId = t.Application!.ClientId,
                    AppEnabled = t.Application.Enabled,
                    AuthorizationStatus = t.Authorization != null ? t.Authorization.Status : null,
                })
                .FirstOrDefaultAsync(cancellationToken);

            if (entry is null || entry.Type != TokenTypeIdentifiers.AccessToken)
            {
                return CallerValidation.Fail("The access token is not valid.");
            }
            if (entry.Status != Statuses.Valid || (entry.AuthorizationStatus is not null && entry.AuthorizationStatus != Statuses.Valid))
            {
                return CallerValidation.Fail("The access token has been revoked.");
            }
            if (!entry.AppEnabled)
            {
                return CallerValidation.Fail("The access token's application is disabled.");
            }
            // OpenIddict keeps UTC DateTimes; read them as such whatever Kind the provider materialises.
            var expires = entry.ExpirationDate is { } date ? DateTime.SpecifyKind(date, DateTimeKind.Utc) : (DateTime?)null;
            var (scopes, audiences) = ReadScopesAndAudiences(entry.Properties);
            snapshot = new AccessTokenSnapshot(entry.Subject, entry.ClientId ?? "", scopes, audiences, expires);
            // Only valid tokens are cached; a revocation or a disabled app moves the OAuth revision on.
            cache.Set(referenceId, snapshot, revision);
        }

        if (snapshot.ExpiresUtc is { } expiresUtc && expiresUtc <= time.GetUtcNow().UtcDateTime)
        {
            return CallerValidation.Fail("The access token has expired.");
        }
        return Caller(snapshot.Subject, snapshot.ClientId, snapshot.Scopes, snapshot.Audiences);
    }

    private async Task<CallerValidation> ValidateJwtAsync(string token, CancellationToken cancellationToken)
    {
        // Resolved here, not injected: building OpenIddict's managers costs more than an opaque check.
        var factory = services.GetRequiredService<IOpenIddictServerFactory>();
        var dispatcher = services.GetRequiredService<IOpenIddictServerDispatcher>();
        var applications = services.GetRequiredService<OAuthApplicationManager>();
        var transaction = await factory.CreateTransactionAsync();
        var context = new OpenIddictServerEvents.ValidateTokenContext(transaction)
        {
            Token = token,
            ValidTokenTypes = { TokenTypeIdentifiers.AccessToken },
        };
        await dispatcher.DispatchAsync(context);
        if (context.IsRejected || context.Principal is null)
        {
            return CallerValidation.Fail(context.ErrorDescription ?? "The access token is not valid.");
        }
        var clientId = context.Principal.GetPresenters().FirstOrDefault();
        if (clientId is not null && await applications.FindByClientIdAsync(clientId, cancellationToken) is { Enabled: false })
        {
            return CallerValidation.Fail("The access token's application is disabled.");
        }
        return Caller(context.Principal.GetClaim(Claims.Subject), clientId, context.Principal.GetScopes(), [.. context.Principal.GetAudiences()]);
    }

    private static CallerValidation Caller(string? subject, string? clientId, IReadOnlyList<string> scopes, IReadOnlyList<string> audiences) =>
        // A client_credentials token acts for the app itself: its subject is the client id, and no user.
        new(subject == clientId ? null : subject, scopes, null, clientId ?? "", null, audiences);

    private static (string[] Scopes, string[] Audiences) ReadScopesAndAudiences(string? properties)
    {
        if (string.IsNullOrEmpty(properties))
        {
            return ([], []);
        }
        using var document = JsonDocument.Parse(properties);
        return (ReadArray(document.RootElement, TokenFormats.ScopesProperty), ReadArray(document.RootElement, TokenFormats.AudiencesProperty));
    }

    private static string[] ReadArray(JsonElement properties, string name) =>
        properties.TryGetProperty(name, out var values) && values.ValueKind == JsonValueKind.Array
            ? values.EnumerateArray().Select(s => s.GetString() ?? "").ToArray()
            : [];
}

/// <summary>A valid opaque access token as read from the database (cached by its stored reference id).</summary>
public sealed record AccessTokenSnapshot(string? Subject, string ClientId, string[] Scopes, string[] Audiences, DateTime? ExpiresUtc);

using System.Text.Json;
using Latchkey.Cluster;
using Latchkey.Common;
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
/// configured, goes through OpenIddict's own validation. A token bound to a DPoP key (RFC 9449)
/// must come with the DPoP scheme and a proof by that key for this request and this token.
/// </summary>
internal sealed class AccessTokenValidator(
    LatchkeyDbContext db,
    TimeProvider time,
    IOptions<AuthorizationServerOptions> options,
    IServiceProvider services,
    SnapshotCache<AccessTokenSnapshot> cache,
    DPoPProofs proofs) : IAccessTokenValidator
{
    public async ValueTask<CallerValidation> ValidateAsync(string token, bool sentWithDPoP, HttpRequest request, CancellationToken cancellationToken)
    {
        var (caller, boundKey) = TokenFormats.AccessToken.HasPrefix(token) ? await ValidateOpaqueAsync(token, cancellationToken)
            : options.Value.UsesJwtAccessTokens && token.Count(c => c == '.') == 2 ? await ValidateJwtAsync(token, cancellationToken)
            : (CallerValidation.Fail("The access token is not valid."), null);
        return caller.Succeeded && (boundKey is not null || sentWithDPoP)
            ? await CheckSenderAsync(caller, boundKey, token, sentWithDPoP, request)
            : caller;
    }

    // RFC 9449 §7: a bound token only with its proof; an unbound one sent with the DPoP scheme still has its proof checked.
    private async Task<CallerValidation> CheckSenderAsync(CallerValidation caller, string? boundKey, string token, bool sentWithDPoP, HttpRequest request)
    {
        if (!sentWithDPoP)
        {
            return CallerValidation.Fail("The access token is bound to a DPoP key: send it as 'Authorization: DPoP <token>' with a DPoP proof.");
        }
        var (proof, problem) = await proofs.ValidateAsync(request, request.Method, DPoPProofs.RequestUrl(request), token);
        if (proof is null)
        {
            return CallerValidation.Fail(problem!, DPoPScheme.InvalidProof);
        }
        if (boundKey is not null && !DPoPProofs.SameKey(proof.KeyThumbprint, boundKey))
        {
            return CallerValidation.Fail("The DPoP proof is signed by another key than the one the access token is bound to.", DPoPScheme.InvalidProof);
        }
        return caller;
    }

    private async Task<(CallerValidation, string? BoundKey)> ValidateOpaqueAsync(string token, CancellationToken cancellationToken)
    {
        if (!TokenFormats.AccessToken.IsWellFormed(token))
        {
            return (CallerValidation.Fail("The access token is malformed."), null);
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
                return (CallerValidation.Fail("The access token is not valid."), null);
            }
            if (entry.Status != Statuses.Valid || (entry.AuthorizationStatus is not null && entry.AuthorizationStatus != Statuses.Valid))
            {
                return (CallerValidation.Fail("The access token has been revoked."), null);
            }
            if (!entry.AppEnabled)
            {
                return (CallerValidation.Fail("The access token's application is disabled."), null);
            }
            // OpenIddict keeps UTC DateTimes; read them as such whatever Kind the provider materialises.
            var expires = entry.ExpirationDate is { } date ? DateTime.SpecifyKind(date, DateTimeKind.Utc) : (DateTime?)null;
            var (scopes, audiences, keyThumbprint) = ReadProperties(entry.Properties);
            snapshot = new AccessTokenSnapshot(entry.Subject, entry.ClientId ?? "", scopes, audiences, expires, keyThumbprint);
            // Only valid tokens are cached; a revocation or a disabled app moves the OAuth revision on.
            cache.Set(referenceId, snapshot, revision);
        }

        if (snapshot.ExpiresUtc is { } expiresUtc && expiresUtc <= time.GetUtcNow().UtcDateTime)
        {
            return (CallerValidation.Fail("The access token has expired."), null);
        }
        return (Caller(snapshot.Subject, snapshot.ClientId, snapshot.Scopes, snapshot.Audiences), snapshot.KeyThumbprint);
    }

    private async Task<(CallerValidation, string? BoundKey)> ValidateJwtAsync(string token, CancellationToken cancellationToken)
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
            // The DPoP proof is checked here, against the request at this resource (CheckSenderAsync).
            DisableProofOfPossessionValidation = true,
        };
        await dispatcher.DispatchAsync(context);
        if (context.IsRejected || context.Principal is null)
        {
            return (CallerValidation.Fail(context.ErrorDescription ?? "The access token is not valid."), null);
        }
        var clientId = context.Principal.GetPresenters().FirstOrDefault();
        if (clientId is not null && await applications.FindByClientIdAsync(clientId, cancellationToken) is { Enabled: false })
        {
            return (CallerValidation.Fail("The access token's application is disabled."), null);
        }
        return (Caller(context.Principal.GetClaim(Claims.Subject), clientId, context.Principal.GetScopes(), [.. context.Principal.GetAudiences()]),
            DPoPProofs.BoundThumbprint(context.Principal.GetClaim(Claims.Confirmation)));
    }

    private static CallerValidation Caller(string? subject, string? clientId, IReadOnlyList<string> scopes, IReadOnlyList<string> audiences) =>
        // A client_credentials token acts for the app itself: its subject is the client id, and no user.
        new(subject == clientId ? null : subject, scopes, null, clientId ?? "", null, audiences);

    private static (string[] Scopes, string[] Audiences, string? KeyThumbprint) ReadProperties(string? properties)
    {
        if (string.IsNullOrEmpty(properties))
        {
            return ([], [], null);
        }
        using var document = JsonDocument.Parse(properties);
        var root = document.RootElement;
        var keyThumbprint = root.TryGetProperty(TokenFormats.KeyThumbprintProperty, out var jkt) && jkt.ValueKind == JsonValueKind.String ? jkt.GetString() : null;
        return (StoredTokenClaims.ReadArray(root, TokenFormats.ScopesProperty), StoredTokenClaims.ReadArray(root, TokenFormats.AudiencesProperty), keyThumbprint);
    }
}

/// <summary>
/// A valid opaque access token as read from the database (cached by its stored reference id), with
/// the thumbprint of the DPoP key it is bound to, if it is.
/// </summary>
public sealed record AccessTokenSnapshot(string? Subject, string ClientId, string[] Scopes, string[] Audiences, DateTime? ExpiresUtc, string? KeyThumbprint = null);

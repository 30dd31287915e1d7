using System.Collections.Immutable;
using System.Security.Claims;
using System.Text.Json;
using Latchkey.Features.AuthorizationServer.Apps;
using Latchkey.Features.AuthorizationServer.Stores;
using Latchkey.Features.SecurityEvents;
using Latchkey.Features.Telemetry;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

using OidcScopes = OpenIddict.Abstractions.OpenIddictConstants.Scopes;

namespace Latchkey.Features.AuthorizationServer.Grants;

/// <summary>An app a user has authorized, as the user sees it.</summary>
public sealed record AuthorizedApp(
    string ClientId, string Name, string? LogoUrl, IReadOnlyList<string> Scopes, DateTimeOffset? GrantedAt, DateTimeOffset? LastUsedAt);

/// <summary>
/// What users have granted to apps (OpenIddict's permanent authorizations): remembered consent,
/// the list of authorized apps, and revoking an app's access.
/// </summary>
public sealed class UserGrants(
    LatchkeyDbContext db,
    IOpenIddictAuthorizationManager authorizations,
    IOpenIddictTokenManager tokens,
    OAuthApplicationManager applications,
    SecurityEventLog securityEvents,
    LatchkeyMetrics metrics)
{
    /// <summary>Every scope the user has granted the app so far.</summary>
    public async Task<HashSet<string>> GrantedScopesAsync(string userId, string applicationId, CancellationToken cancellationToken)
    {
        var granted = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var authorization in authorizations.FindAsync(userId, applicationId, Statuses.Valid, AuthorizationTypes.Permanent, null, cancellationToken))
        {
            granted.UnionWith(await authorizations.GetScopesAsync(authorization, cancellationToken));
        }
        return granted;
    }

    /// <summary>
    /// Records the user's consent; later requests within these scopes skip the consent page. Consent
    /// given step by step (incremental consent) is merged into the one record the user has for the app.
    /// </summary>
    public async Task<string> RememberAsync(ClaimsPrincipal principal, string userId, string applicationId, ImmutableArray<string> scopes, CancellationToken cancellationToken)
    {
        object? existing = null;
        await foreach (var authorization in authorizations.FindAsync(userId, applicationId, Statuses.Valid, AuthorizationTypes.Permanent, null, cancellationToken))
        {
            existing = authorization;
            break;
        }
        if (existing is null)
        {
            existing = await authorizations.CreateAsync(principal, userId, applicationId, AuthorizationTypes.Permanent, scopes, cancellationToken);
        }
        else
        {
            var descriptor = new OpenIddictAuthorizationDescriptor();
            await authorizations.PopulateAsync(descriptor, existing, cancellationToken);
            descriptor.Scopes.UnionWith(scopes);
            await authorizations.PopulateAsync(existing, descriptor, cancellationToken);
            await authorizations.UpdateAsync(existing, cancellationToken);
        }
        return (await authorizations.GetIdAsync(existing, cancellationToken))!;
    }

    public async Task<List<AuthorizedApp>> ListAsync(string userId, CancellationToken cancellationToken)
    {
        var rows = await db.OAuthAuthorizations.AsNoTracking()
            .Where(a => a.Subject == userId && a.Status == Statuses.Valid && a.Application != null)
            .Select(a => new
            {
                a.Application!.ClientId,
                a.Application.DisplayName,
                a.Application.LogoVersion,
                a.Scopes,
                a.CreationDate,
                LastUsed = a.Tokens.Max(t => t.CreationDate),
            })
            .ToListAsync(cancellationToken);

        return rows.GroupBy(r => r.ClientId!)
            .Select(group => new AuthorizedApp(
                group.Key,
                group.First().DisplayName ?? group.Key,
                OAuthAppService.LogoUrl(group.Key, group.First().LogoVersion),
                group.SelectMany(r => ParseScopes(r.Scopes)).Where(s => s != OidcScopes.OfflineAccess).Distinct().ToList(),
                group.Min(r => r.CreationDate),
                group.Max(r => r.LastUsed)))
            .OrderBy(a => a.Name, StringComparer.OrdinalIgnoreCase)
            .ToList();
    }

    /// <summary>Revokes everything the user granted the app: its authorizations and all their tokens.</summary>
    public async Task<bool> RevokeAsync(string userId, string clientId, CancellationToken cancellationToken)
    {
        var application = await applications.FindByClientIdAsync(clientId, cancellationToken);
        if (application is null)
        {
            return false;
        }
        // Read them all first: PostgreSQL allows one open command per connection.
        var found = new List<object>();
        await foreach (var authorization in authorizations.FindAsync(userId, application.Id, null, null, null, cancellationToken))
        {
            found.Add(authorization);
        }
        // The consent (permanent) and every sign-in's chain (ad-hoc) with all their tokens; the log
        // names the consent, or the first chain if none was remembered.
        string? recorded = null;
        var chains = 0;
        foreach (var authorization in found)
        {
            var id = await authorizations.GetIdAsync(authorization, cancellationToken);
            await authorizations.TryRevokeAsync(authorization, cancellationToken);
            await tokens.RevokeByAuthorizationIdAsync(id!, cancellationToken);
            if (await authorizations.HasTypeAsync(authorization, AuthorizationTypes.Permanent, cancellationToken))
            {
                recorded = id;
            }
            else
            {
                chains++;
                recorded ??= id;
            }
        }
        if (recorded is not null)
        {
            metrics.TokenRevoked(clientId, "user_revoked_app");
            securityEvents.Record(userId, SecurityEventTypes.TokenRevoked, recorded, clientId,
                $"app access revoked by the user (the consent and {chains} sign-in(s), every token)");
        }
        return found.Count > 0;
    }

    private static string[] ParseScopes(string? json) =>
        string.IsNullOrEmpty(json) ? [] : JsonSerializer.Deserialize<string[]>(json) ?? [];
}

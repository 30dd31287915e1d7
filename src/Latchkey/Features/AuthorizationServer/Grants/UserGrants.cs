using System.Collections.Immutable;
using System.Security.Claims;
using System.Text.Json;
using Latchkey.Features.AuthorizationServer.Apps;
using Latchkey.Features.AuthorizationServer.Stores;
using Latchkey.Features.SecurityEvents;
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
    SecurityEventLog securityEvents)
{
    /// <summary>A valid permanent authorization of the user for the app covering every scope, if there is one.</summary>
    public async Task<string?> FindCoveringAsync(string userId, string applicationId, ImmutableArray<string> scopes, CancellationToken cancellationToken)
    {
        await foreach (var authorization in authorizations.FindAsync(userId, applicationId, Statuses.Valid, AuthorizationTypes.Permanent, scopes, cancellationToken))
        {
            return await authorizations.GetIdAsync(authorization, cancellationToken);
        }
        return null;
    }

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

    /// <summary>Records the user's consent; later requests within these scopes skip the consent page.</summary>
    public async Task<string> RememberAsync(ClaimsPrincipal principal, string userId, string applicationId, ImmutableArray<string> scopes, CancellationToken cancellationToken)
    {
        var authorization = await authorizations.CreateAsync(principal, userId, applicationId, AuthorizationTypes.Permanent, scopes, cancellationToken);
        return (await authorizations.GetIdAsync(authorization, cancellationToken))!;
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
        foreach (var authorization in found)
        {
            var id = await authorizations.GetIdAsync(authorization, cancellationToken);
            await authorizations.TryRevokeAsync(authorization, cancellationToken);
            await tokens.RevokeByAuthorizationIdAsync(id!, cancellationToken);
            securityEvents.Record(userId, SecurityEventTypes.TokenRevoked, id, clientId, "app access revoked by the user (every token of the grant)");
        }
        return found.Count > 0;
    }

    private static string[] ParseScopes(string? json) =>
        string.IsNullOrEmpty(json) ? [] : JsonSerializer.Deserialize<string[]>(json) ?? [];
}

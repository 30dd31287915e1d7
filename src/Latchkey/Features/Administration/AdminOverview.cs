using Latchkey.Features.Accounts;
using Latchkey.Features.Broker.Credentials;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Latchkey.Features.Administration;

public sealed record DeploymentCounts(int Accounts, int Admins, int DisabledAccounts, int Apps, int SelfRegisteredApps, int DisabledApps,
    int Credentials, int CredentialsNeedingReauth, int McpServers, int PendingApprovals);

/// <summary>How an app came to be registered.</summary>
public enum AppOrigin
{
    /// <summary>By an account (profile page, API or CLI).</summary>
    Account,
    /// <summary>By itself, through dynamic client registration (RFC 7591).</summary>
    DynamicRegistration,
    /// <summary>By its client id being the URL of its metadata document (MCP authorization).</summary>
    MetadataDocument,
}

public sealed record AdminAppRow(string ClientId, string Name, AppOrigin Origin, string? OwnerEmail, string ClientType, bool Enabled,
    DateTimeOffset CreatedAt, int ActiveTokens, int SignedInAccounts);

public enum AppFilter
{
    All,
    SelfRegistered,
    Disabled,
}

/// <summary>One provider configuration's credentials, counted by state. Never a token or secret.</summary>
public sealed record ProviderHealthRow(string ProviderId, string Name, string CatalogKey, string? OwnerEmail, int Total, int Active, int NeedsReauth,
    int Expired, int WithLastError, DateTimeOffset? LastRefreshedAt, DateTimeOffset? LastUsedAt)
{
    public bool Healthy => NeedsReauth == 0 && Expired == 0 && WithLastError == 0;
}

/// <summary>The read side of the admin pages: counts and lists across every account.</summary>
public sealed class AdminOverview(LatchkeyDbContext db, TimeProvider time)
{
    public const int ListLimit = 500;

    public async Task<DeploymentCounts> CountsAsync(CancellationToken cancellationToken)
    {
        var adminRole = await db.Roles.Where(r => r.Name == AccountRoles.Admin).Select(r => r.Id).FirstOrDefaultAsync(cancellationToken);
        // Disabled accounts are told apart by their lock-out end, compared here: SQLite cannot compare DateTimeOffset values in SQL.
        var lockedOut = await db.Users.Where(u => u.LockoutEnabled && u.LockoutEnd != null).Select(u => u.LockoutEnd).ToListAsync(cancellationToken);
        return new DeploymentCounts(
            await db.Users.CountAsync(cancellationToken),
            adminRole is null ? 0 : await db.UserRoles.CountAsync(r => r.RoleId == adminRole, cancellationToken),
            lockedOut.Count(end => AccountDisabling.IsDisabled(true, end)),
            await db.OAuthApplications.CountAsync(cancellationToken),
            await db.OAuthApplications.CountAsync(a => a.OwnerId == null, cancellationToken),
            await db.OAuthApplications.CountAsync(a => !a.Enabled, cancellationToken),
            await db.BrokerCredentials.CountAsync(cancellationToken),
            await db.BrokerCredentials.CountAsync(c => c.Status == CredentialStatus.NeedsReauth, cancellationToken),
            await db.McpServers.CountAsync(cancellationToken),
            await db.McpApprovals.CountAsync(a => a.Status == Mcp.Approvals.ApprovalStatuses.Pending, cancellationToken));
    }

    /// <summary>Apps, newest first, with how many tokens are live and how many accounts signed in to each.</summary>
    public async Task<List<AdminAppRow>> AppsAsync(AppFilter filter, string? search, CancellationToken cancellationToken)
    {
        var query = db.OAuthApplications.AsNoTracking();
        query = filter switch
        {
            AppFilter.SelfRegistered => query.Where(a => a.OwnerId == null),
            AppFilter.Disabled => query.Where(a => !a.Enabled),
            _ => query,
        };
        if (search?.Trim() is { Length: > 0 } text)
        {
            var pattern = text.ToUpperInvariant();
#pragma warning disable CA1304, CA1311, CA1862 // SQL's upper(): the same on SQLite and PostgreSQL.
            query = query.Where(a => a.ClientId!.ToUpper().Contains(pattern) || a.DisplayName!.ToUpper().Contains(pattern));
#pragma warning restore CA1304, CA1311, CA1862
        }
        var apps = await query.OrderByDescending(a => a.CreatedAt).ThenBy(a => a.Id).Take(ListLimit)
            .Select(a => new { a.Id, a.ClientId, a.DisplayName, a.OwnerId, OwnerEmail = a.Owner!.Email, a.ClientType, a.Enabled, a.CreatedAt, a.MetadataDocumentExpiresAt })
            .ToListAsync(cancellationToken);
        var ids = apps.Select(a => a.Id).ToList();
        var tokens = await db.OAuthTokens.Where(t => t.Application != null && ids.Contains(t.Application.Id) && t.Status == Statuses.Valid)
            .GroupBy(t => t.Application!.Id).Select(g => new { g.Key, Count = g.Count() })
            .ToDictionaryAsync(g => g.Key!, g => g.Count, cancellationToken);
        var accounts = await db.OAuthAuthorizations.Where(a => a.Application != null && ids.Contains(a.Application.Id) && a.Status == Statuses.Valid)
            .GroupBy(a => a.Application!.Id).Select(g => new { g.Key, Count = g.Select(a => a.Subject).Distinct().Count() })
            .ToDictionaryAsync(g => g.Key!, g => g.Count, cancellationToken);
        return [.. apps
            .Select(a => new AdminAppRow(a.ClientId!, a.DisplayName ?? a.ClientId!,
                a.OwnerId is not null ? AppOrigin.Account : a.MetadataDocumentExpiresAt is not null ? AppOrigin.MetadataDocument : AppOrigin.DynamicRegistration,
                a.OwnerEmail, a.ClientType ?? ClientTypes.Public, a.Enabled, a.CreatedAt,
                tokens.GetValueOrDefault(a.Id!), accounts.GetValueOrDefault(a.Id!)))];
    }

    /// <summary>Every provider configuration with its credentials counted by state.</summary>
    public async Task<List<ProviderHealthRow>> CredentialHealthAsync(CancellationToken cancellationToken)
    {
        var providers = await db.BrokerProviders.AsNoTracking()
            .Select(p => new { p.Id, p.Name, p.CatalogKey, OwnerEmail = p.Owner == null ? null : p.Owner.Email })
            .ToListAsync(cancellationToken);
        // Read as a narrow projection and counted here: SQLite cannot aggregate DateTimeOffset values in SQL.
        var credentials = await db.BrokerCredentials.AsNoTracking()
            .Select(c => new { c.ProviderInstanceId, c.Status, c.ExpiresAt, Refreshable = c.RefreshTokenCiphertext != null, HasError = c.LastError != null, c.LastRefreshedAt, c.LastUsedAt })
            .ToListAsync(cancellationToken);
        var now = time.GetUtcNow();
        var byProvider = credentials.ToLookup(c => c.ProviderInstanceId);
        return [.. providers.Select(p =>
        {
            var mine = byProvider[p.Id].ToList();
            return new ProviderHealthRow(p.Id, p.Name, p.CatalogKey, p.OwnerEmail, mine.Count,
                mine.Count(c => c.Status == CredentialStatus.Active),
                mine.Count(c => c.Status == CredentialStatus.NeedsReauth),
                mine.Count(c => c.Status == CredentialStatus.Active && !c.Refreshable && c.ExpiresAt is { } expires && expires <= now),
                mine.Count(c => c.HasError),
                mine.Max(c => c.LastRefreshedAt),
                mine.Max(c => c.LastUsedAt));
        }).OrderByDescending(p => p.Total).ThenBy(p => p.Name, StringComparer.OrdinalIgnoreCase)];
    }

    /// <summary>E-mail addresses of the given account ids that still exist (the security log names deleted ones by id only).</summary>
    public async Task<Dictionary<string, string>> EmailsAsync(IEnumerable<string> accountIds, CancellationToken cancellationToken)
    {
        var ids = accountIds.Distinct().ToList();
        return await db.Users.Where(u => ids.Contains(u.Id) && u.Email != null)
            .ToDictionaryAsync(u => u.Id, u => u.Email!, cancellationToken);
    }
}

using System.Text.Json;
using Latchkey.Features.Accounts;
using Latchkey.Features.SecurityEvents;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Features.AccountData;

/// <summary>
/// Everything Latchkey keeps about an account, as one JSON document for its owner to take away
/// (<c>/profile/account</c>): the profile, what the account made (API keys, apps, credentials,
/// MCP servers, webhooks), the apps it signed in to, and its whole security log. Secrets are never
/// in it, not even encrypted: no key, token, client secret or password hash; a credential is
/// described, its tokens are not.
/// </summary>
public sealed class AccountExport(LatchkeyDbContext db, SecurityEventHistory history, TimeProvider time)
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
    };

    public async Task WriteAsync(LatchkeyUser user, Stream destination, CancellationToken cancellationToken)
    {
        var id = user.Id;
        var roles = await (from userRole in db.UserRoles
                           join role in db.Roles on userRole.RoleId equals role.Id
                           where userRole.UserId == id
                           select role.Name).ToListAsync(cancellationToken);
        var passkeys = await db.UserPasskeys.AsNoTracking().Where(p => p.UserId == id).ToListAsync(cancellationToken);
        var document = new
        {
            exported_at = time.GetUtcNow(),
            account = new
            {
                user.Id, user.Email, Name = user.DisplayName, user.TimeZone, user.CreatedAt, user.EmailConfirmed, Roles = roles,
            },
            sign_in = new
            {
                HasPassword = user.PasswordHash is not null,
                TwoFactor = new { Enabled = user.TwoFactorEnabled, Required = user.TwoFactorRequired },
                // A passkey's public key is no secret, but it is of no use to its owner either: names and dates only.
                Passkeys = passkeys.OrderBy(p => p.Data.CreatedAt)
                    .Select(p => new { Name = p.Data.Name ?? "Passkey", p.Data.CreatedAt, Synced = p.Data.IsBackedUp }),
                LinkedAccounts = await db.UserLogins.AsNoTracking().Where(l => l.UserId == id)
                    .Select(l => new { Provider = l.LoginProvider, Name = l.ProviderDisplayName }).ToListAsync(cancellationToken),
                Sessions = await db.AccountSessions.AsNoTracking().Where(s => s.UserId == id).OrderBy(s => s.CreatedAt)
                    .Select(s => new { s.UserAgent, s.IpAddress, s.CreatedAt, s.LastSeenAt, s.ExpiresAt }).ToListAsync(cancellationToken),
            },
            api_keys = await db.ApiKeys.AsNoTracking().Where(k => k.UserId == id).OrderBy(k => k.CreatedAt)
                .Select(k => new { k.Id, k.Name, Prefix = k.DisplayPrefix, k.Scopes, k.CreatedAt, k.ExpiresAt, k.LastUsedAt, k.RevokedAt })
                .ToListAsync(cancellationToken),
            oauth_apps = await db.OAuthApplications.AsNoTracking().Where(a => a.OwnerId == id).OrderBy(a => a.CreatedAt)
                .Select(a => new { a.ClientId, Name = a.DisplayName, a.Description, Homepage = a.HomepageUrl, a.RedirectUris, a.ClientType, a.Enabled, a.CreatedAt })
                .ToListAsync(cancellationToken),
            app_sign_ins = await db.OAuthAuthorizations.AsNoTracking().Where(a => a.Subject == id)
                .Select(a => new { a.Id, ClientId = a.Application!.ClientId, a.Scopes, a.Status, a.Type, CreatedAt = a.CreationDate })
                .ToListAsync(cancellationToken),
            credentials = await db.BrokerCredentials.AsNoTracking().Where(c => c.AccountId == id).OrderBy(c => c.CreatedAt)
                .Select(c => new
                {
                    c.Id, Provider = c.ProviderKey, ProviderId = c.ProviderInstanceId, c.Kind, c.Scopes, c.Status, c.EndUserId, c.Tags,
                    c.ExternalAccountId, c.ExternalAccountLabel, c.CreatedAt, c.ExpiresAt, c.LastRefreshedAt, c.LastUsedAt,
                })
                .ToListAsync(cancellationToken),
            providers = await db.BrokerProviders.AsNoTracking().Where(p => p.OwnerId == id)
                .Select(p => new { p.Id, p.Name, Catalog = p.CatalogKey, p.ClientId, p.CreatedAt })
                .ToListAsync(cancellationToken),
            mcp_servers = await db.McpServers.AsNoTracking().Where(s => s.OwnerId == id).OrderBy(s => s.CreatedAt)
                .Select(s => new { s.Id, s.Name, Url = s.UpstreamUrl, DefaultCredentialId = s.DefaultCredentialId, s.CreatedAt })
                .ToListAsync(cancellationToken),
            webhooks = await db.WebhookEndpoints.AsNoTracking().Where(e => e.AccountId == id).OrderBy(e => e.CreatedAt)
                .Select(e => new { e.Id, e.Url, e.Events, e.Enabled, e.CreatedAt })
                .ToListAsync(cancellationToken),
            security_events = await history.AllAsync(id, new SecurityEventFilter([], null, null), cancellationToken)
                .Select(SecurityEventView.From).ToListAsync(cancellationToken),
        };
        await JsonSerializer.SerializeAsync(destination, document, Json, cancellationToken);
    }

    public static string FileName(DateTimeOffset at) => $"latchkey-account-{at:yyyyMMdd-HHmmss}.json";
}

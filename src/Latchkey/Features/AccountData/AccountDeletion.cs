using Latchkey.Features.Accounts;
using Latchkey.Features.AuthorizationServer.Apps;
using Latchkey.Features.Broker.Credentials;
using Latchkey.Features.SecurityEvents;
using Latchkey.Storage;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Latchkey.Features.AccountData;

/// <summary>What deleting an account removes, counted before it is done (and what it did remove, after).</summary>
public sealed record AccountDeletionPlan(
    int ApiKeys,
    int OwnedApps,
    int OtherPeopleUsingOwnedApps,
    int AppAuthorizations,
    int ActiveTokens,
    int Credentials,
    int Providers,
    int McpServers,
    int VirtualServers,
    int Webhooks)
{
    /// <summary>One line per kind of thing, in words, with nothing left out (zero counts included: the operator sees what was checked).</summary>
    public IReadOnlyList<string> Lines() =>
    [
        $"{ApiKeys} API key(s), deleted: every request with them is refused at once",
        $"{OwnedApps} OAuth app(s) it registered, deleted with their tokens" +
            (OtherPeopleUsingOwnedApps > 0 ? $" ({OtherPeopleUsingOwnedApps} other account(s) signed in to them lose that access)" : ""),
        $"{AppAuthorizations} app sign-in(s) of this account and {ActiveTokens} active token(s), revoked and removed",
        $"{Credentials} connected credential(s), revoked at the provider where it allows and deleted",
        $"{Providers} provider configuration(s) it added, deleted",
        $"{McpServers} MCP server(s) and {VirtualServers} virtual server(s), deleted with their tool mappings, policies and waiting approvals",
        $"{Webhooks} webhook endpoint(s), deleted with their deliveries",
        "its browser sessions, roles and the account itself",
    ];
}

/// <summary>
/// Deletes an account and everything it owns. The account is disabled first, so an interruption
/// (a provider that hangs on revocation, a stopped process) leaves a disabled account that can
/// do nothing, and running the deletion again finishes it. Each part goes through the feature
/// that owns it where that feature does more than remove rows (credentials are revoked at their
/// provider; OAuth apps take their grants and tokens with them); the rest are bulk deletes that
/// the cache invalidation sees, so every node forgets them at once.
/// <para>
/// The account's security log and credential audit trail stay until their retention removes them
/// (<c>SecurityEvents:RetentionDays</c>): they name things by id and hold no secret, and they are
/// what an operator reads when asking what an account did. An <c>account_deleted</c> event records
/// who deleted it.
/// </para>
/// </summary>
public sealed class AccountDeletion(
    LatchkeyDbContext db,
    UserManager<LatchkeyUser> users,
    OAuthAppService apps,
    CredentialService credentials,
    IOpenIddictAuthorizationManager authorizations,
    IOpenIddictTokenManager tokens,
    SecurityEventLog securityEvents)
{
    public async Task<AccountDeletionPlan> PlanAsync(string userId, CancellationToken cancellationToken)
    {
        var ownedAppIds = db.OAuthApplications.Where(a => a.OwnerId == userId).Select(a => a.Id);
        return new AccountDeletionPlan(
            await db.ApiKeys.CountAsync(k => k.UserId == userId, cancellationToken),
            await db.OAuthApplications.CountAsync(a => a.OwnerId == userId, cancellationToken),
            await db.OAuthAuthorizations.Where(a => a.Application != null && ownedAppIds.Contains(a.Application.Id)
                && a.Subject != userId && a.Status == Statuses.Valid).Select(a => a.Subject).Distinct().CountAsync(cancellationToken),
            await db.OAuthAuthorizations.CountAsync(a => a.Subject == userId && a.Status == Statuses.Valid, cancellationToken),
            await db.OAuthTokens.CountAsync(t => t.Subject == userId && t.Status == Statuses.Valid, cancellationToken),
            await db.BrokerCredentials.CountAsync(c => c.AccountId == userId, cancellationToken),
            await db.BrokerProviders.CountAsync(p => p.OwnerId == userId, cancellationToken),
            await db.McpServers.CountAsync(s => s.OwnerId == userId, cancellationToken),
            await db.McpVirtualServers.CountAsync(s => s.OwnerId == userId, cancellationToken),
            await db.WebhookEndpoints.CountAsync(e => e.AccountId == userId, cancellationToken));
    }

    /// <summary>Deletes the account; <paramref name="deletedBy"/> says who did it, for the security log.</summary>
    public async Task<AccountDeletionPlan> DeleteAsync(LatchkeyUser user, string deletedBy, CancellationToken cancellationToken)
    {
        var plan = await PlanAsync(user.Id, cancellationToken);

        await AccountDisabling.DisableAsync(users, user);

        await authorizations.RevokeBySubjectAsync(user.Id, cancellationToken);
        await tokens.RevokeBySubjectAsync(user.Id, cancellationToken);
        // Tokens first: they refer to their authorization.
        await db.OAuthTokens.Where(t => t.Subject == user.Id).ExecuteDeleteAsync(cancellationToken);
        await db.OAuthAuthorizations.Where(a => a.Subject == user.Id).ExecuteDeleteAsync(cancellationToken);
        await db.ApiKeys.Where(k => k.UserId == user.Id).ExecuteDeleteAsync(cancellationToken);

        foreach (var app in await db.OAuthApplications.Where(a => a.OwnerId == user.Id).ToListAsync(cancellationToken))
        {
            await apps.DeleteAsync(app, cancellationToken);
        }

        // Webhooks before credentials: the account's endpoints are going, so no delivery is queued to them.
        await db.WebhookEndpoints.Where(e => e.AccountId == user.Id).ExecuteDeleteAsync(cancellationToken);
        foreach (var id in await db.BrokerCredentials.Where(c => c.AccountId == user.Id).Select(c => c.Id).ToListAsync(cancellationToken))
        {
            await credentials.DeleteAsync(user.Id, id, cancellationToken);
        }
        await db.BrokerFlows.Where(f => f.AccountId == user.Id).ExecuteDeleteAsync(cancellationToken);
        await db.BrokerConnectSessions.Where(s => s.AccountId == user.Id).ExecuteDeleteAsync(cancellationToken);
        await db.BrokerProviders.Where(p => p.OwnerId == user.Id).ExecuteDeleteAsync(cancellationToken);

        await db.McpVirtualServers.Where(s => s.OwnerId == user.Id).ExecuteDeleteAsync(cancellationToken);
        await db.McpApprovals.Where(a => a.OwnerId == user.Id).ExecuteDeleteAsync(cancellationToken);
        await db.McpServers.Where(s => s.OwnerId == user.Id).ExecuteDeleteAsync(cancellationToken);

        // Rows the steps above loaded (a credential's provider) are gone from the database by now:
        // forget them, or deleting the account would cascade to them again and find nothing to delete.
        // The account is read afresh for the same reason (a sign-in attempt may have counted a failure).
        db.ChangeTracker.Clear();
        var current = await users.FindByIdAsync(user.Id);
        var result = current is null ? IdentityResult.Success : await users.DeleteAsync(current);
        if (!result.Succeeded)
        {
            throw new InvalidOperationException("The account could not be deleted: " + string.Join(" ", result.Errors.Select(e => e.Description)));
        }
        securityEvents.Record(user.Id, SecurityEventTypes.AccountDeleted,
            detail: $"{user.Email} deleted by {deletedBy}: {plan.ApiKeys} API key(s), {plan.OwnedApps} app(s), {plan.Credentials} credential(s), " +
                    $"{plan.McpServers} MCP server(s), {plan.Webhooks} webhook(s)");
        return plan;
    }
}

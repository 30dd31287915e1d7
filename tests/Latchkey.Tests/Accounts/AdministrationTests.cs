using System.Net;
using Latchkey.Features.Administration;
using Latchkey.Features.Broker.Credentials;
using Latchkey.Features.Broker.Providers;
using Latchkey.Features.SecurityEvents;
using Latchkey.Features.Settings;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Latchkey.Tests.Accounts;

/// <summary>The admin pages' queries and the run-time settings, on each database (the pages themselves are in AdminPageTests).</summary>
public abstract class AdministrationTests(LatchkeyServerFixture server)
{
    private async Task<T> WithScopeAsync<T>(Func<IServiceProvider, Task<T>> action)
    {
        await using var scope = server.Services.CreateAsyncScope();
        return await action(scope.ServiceProvider);
    }

    [Fact]
    public async Task The_overview_counts_apps_with_their_live_tokens_and_accounts_signed_in()
    {
        var issued = await OAuthClient.IssueAsync(server);

        var apps = await WithScopeAsync(s => s.GetRequiredService<AdminOverview>().AppsAsync(AppFilter.All, issued.App.ClientId, default));
        var selfRegistered = await WithScopeAsync(s => s.GetRequiredService<AdminOverview>().AppsAsync(AppFilter.SelfRegistered, issued.App.ClientId, default));
        var counts = await WithScopeAsync(s => s.GetRequiredService<AdminOverview>().CountsAsync(default));

        var app = Assert.Single(apps);
        Assert.Equal(AppOrigin.Account, app.Origin);
        Assert.Equal(issued.Owner.Email, app.OwnerEmail);
        Assert.True(app.ActiveTokens >= 1, $"{app.ActiveTokens} live tokens");
        Assert.Equal(1, app.SignedInAccounts);
        Assert.Empty(selfRegistered);
        Assert.True(counts.Accounts >= 2 && counts.Apps >= 1, counts.ToString());
    }

    [Fact]
    public async Task Credential_health_counts_each_providers_credentials_by_state_without_reading_a_secret()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var ownerId = await server.WithDbAsync(db => db.Users.Where(u => u.Email == owner.Email).Select(u => u.Id).SingleAsync());
        var providerId = $"prov_{Guid.NewGuid():N}"[..30];
        var now = DateTimeOffset.UtcNow;
        await server.WithDbAsync(db =>
        {
            db.BrokerProviders.Add(new ProviderInstance
            {
                Id = providerId, CatalogKey = "github", Name = "Health check GitHub", ClientId = "client", ClientSecretCiphertext = "", DefinitionJson = "{}",
                OwnerId = ownerId, CreatedAt = now, UpdatedAt = now,
            });
            // Ciphertexts that are not ciphertexts: the overview must never try to read them.
            Credential Row(string status, string? error, DateTimeOffset? expires, string? refresh) => new()
            {
                Id = $"cred_{Guid.NewGuid():N}"[..30], AccountId = ownerId, ProviderInstanceId = providerId, ProviderKey = "github",
                AccessTokenCiphertext = "not-a-ciphertext", RefreshTokenCiphertext = refresh, Status = status, LastError = error, ExpiresAt = expires, CreatedAt = now,
                LastRefreshedAt = now.AddMinutes(-5),
            };
            db.BrokerCredentials.AddRange(
                Row(CredentialStatus.Active, null, now.AddHours(1), "not-a-ciphertext"),
                Row(CredentialStatus.Active, null, now.AddHours(-1), null),
                Row(CredentialStatus.NeedsReauth, "invalid_grant", now.AddHours(-1), "not-a-ciphertext"));
            return db.SaveChangesAsync();
        });

        var health = await WithScopeAsync(s => s.GetRequiredService<AdminOverview>().CredentialHealthAsync(default));

        var row = Assert.Single(health, p => p.ProviderId == providerId);
        Assert.Equal((3, 2, 1, 1, 1), (row.Total, row.Active, row.NeedsReauth, row.Expired, row.WithLastError));
        Assert.Equal(owner.Email, row.OwnerEmail);
        Assert.False(row.Healthy);
        Assert.NotNull(row.LastRefreshedAt);
    }

    [Fact]
    public async Task The_security_log_across_accounts_is_newest_first_and_filters_by_account()
    {
        var first = await TestAccounts.SignUpAsync(server);
        var second = await TestAccounts.SignUpAsync(server);
        var ids = await server.WithDbAsync(db => db.Users.Where(u => u.Email == first.Email || u.Email == second.Email).Select(u => u.Id).ToListAsync());
        await Eventually.TrueAsync(async () => await server.WithDbAsync(db => db.SecurityEvents.CountAsync(e => ids.Contains(e.AccountId))) >= 2,
            TimeSpan.FromSeconds(5), "sign-up events written");

        var (all, _) = await WithScopeAsync(s => s.GetRequiredService<SecurityEventHistory>().PageAsync(null, new SecurityEventFilter(["sign_in"], null, null), 500, null, default));
        var (one, _) = await WithScopeAsync(s => s.GetRequiredService<SecurityEventHistory>().PageAsync(ids[0], new SecurityEventFilter([], null, null), 500, null, default));

        Assert.Superset(ids.ToHashSet(), all.Select(e => e.AccountId).ToHashSet());
        Assert.Equal(all.OrderByDescending(e => e.OccurredAt).ThenByDescending(e => e.Id).Select(e => e.Id), all.Select(e => e.Id));
        Assert.All(one, e => Assert.Equal(ids[0], e.AccountId));
    }

    /// <summary>
    /// On PostgreSQL through another node (several nodes share the database; the change reaches
    /// them by NOTIFY); on SQLite, where one server owns the file, through that server.
    /// </summary>
    [Fact]
    public async Task A_setting_changed_at_run_time_is_used_at_once_everywhere_and_a_bad_value_changes_nothing()
    {
        var (node, address) = server.Provider == Latchkey.Storage.StorageProvider.Postgres
            ? await server.StartAnotherNodeAsync()
            : (null, server.BaseAddress);
        try
        {
            using var other = new HttpClient { BaseAddress = address };
            Assert.Equal(HttpStatusCode.OK, (await other.GetAsync("/account/sign-up")).StatusCode);
            var settings = server.Services.GetRequiredService<RuntimeSettings>();

            Assert.Contains("true or false", await settings.SetAsync(RuntimeSettings.AllowSignUp.Key, "maybe", "test", default));
            Assert.Contains("no run-time setting", await settings.SetAsync("Storage:Provider", "sqlite", "test", default));
            Assert.Contains("control characters", await settings.SetAsync(RuntimeSettings.SiteNotice.Key, "line\nbreak", "test", default));
            Assert.Null(await settings.SetAsync(RuntimeSettings.AllowSignUp.Key, "false", "test", default));

            await Eventually.TrueAsync(async () => (await other.GetAsync("/account/sign-up")).StatusCode == HttpStatusCode.Forbidden,
                TimeSpan.FromSeconds(5), "sign-up closed");
            var value = await settings.GetAsync(RuntimeSettings.AllowSignUp, default);
            Assert.Equal(("false", "true", "test"), (value.Value, value.ConfiguredValue, value.Override!.UpdatedBy));

            await settings.ResetAsync(RuntimeSettings.AllowSignUp.Key, default);
            await Eventually.TrueAsync(async () => (await other.GetAsync("/account/sign-up")).StatusCode == HttpStatusCode.OK,
                TimeSpan.FromSeconds(5), "sign-up open again");
        }
        finally
        {
            await server.Services.GetRequiredService<RuntimeSettings>().ResetAsync(RuntimeSettings.AllowSignUp.Key, default);
            if (node is not null)
            {
                await node.DisposeAsync();
            }
        }
    }
}

public sealed class AdministrationTestsOnSqlite(SqliteServer server) : AdministrationTests(server), IClassFixture<SqliteServer>;

public sealed class AdministrationTestsOnPostgres(PostgresServer server) : AdministrationTests(server), IClassFixture<PostgresServer>;

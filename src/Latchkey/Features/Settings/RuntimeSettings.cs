using System.Collections.Frozen;
using Latchkey.Cluster;
using Latchkey.Features.Accounts;
using Latchkey.Features.Email;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Settings;

public enum RuntimeSettingKind
{
    Boolean,
    Text,
}

/// <summary>One setting that may change while the server runs, with what it means and where its default comes from.</summary>
public sealed record RuntimeSettingDefinition(string Key, string Label, string Description, RuntimeSettingKind Kind, int MaxLength = RuntimeSettingLimits.ValueMaxLength);

/// <summary>A setting as it is now: its value, and whether an administrator set it (who, when) or it is the configured one.</summary>
public sealed record RuntimeSettingValue(RuntimeSettingDefinition Definition, string Value, string ConfiguredValue, RuntimeSetting? Override)
{
    public bool IsOn => bool.TryParse(Value, out var on) && on;
}

/// <summary>
/// The few settings that are safe to change at run time, read on every use (through a cache that a
/// change invalidates on every node) instead of once at start. Only settings whose every value is
/// safe are here: whether anyone may sign up, whether security notices are e-mailed, whether
/// administrators must use a second factor, and a notice
/// shown on every page. Keys, lifetimes, addresses and limits stay in configuration, validated at
/// start, because a wrong value there is caught before the server serves anyone.
/// </summary>
public sealed class RuntimeSettings(IServiceScopeFactory scopes, SnapshotCache<RuntimeSettings.Snapshot> cache, TimeProvider time,
    IOptions<AccountOptions> accounts, IOptions<EmailOptions> email)
{
    public static readonly RuntimeSettingDefinition AllowSignUp = new("Accounts:AllowSignUp", "Anyone may create an account",
        "The sign-up page is open. Off: only 'latchkey users create' makes accounts.", RuntimeSettingKind.Boolean);

    public static readonly RuntimeSettingDefinition SecurityNotices = new("Email:SecurityNotices", "E-mail security notices",
        "Tell people by e-mail about a new API key, a sign-in from a new address and a connection that needs them (needs Email:SmtpHost).", RuntimeSettingKind.Boolean);

    public static readonly RuntimeSettingDefinition SiteNotice = new("Site:Notice", "Notice on every page",
        "A short message shown at the top of every page, such as planned maintenance. Empty: none.", RuntimeSettingKind.Text, 500);

    public static readonly RuntimeSettingDefinition RequireTwoFactorForAdmins = new("Accounts:RequireTwoFactorForAdmins", "Administrators must use two-factor",
        "An account with the admin role must set up an authenticator app before it can do anything else.", RuntimeSettingKind.Boolean);

    public static readonly IReadOnlyList<RuntimeSettingDefinition> All = [AllowSignUp, SecurityNotices, RequireTwoFactorForAdmins, SiteNotice];

    private static readonly FrozenDictionary<string, RuntimeSettingDefinition> ByKey = All.ToFrozenDictionary(d => d.Key, StringComparer.Ordinal);

    private const string CacheKey = "all";

    /// <summary>Every override, as one cached value.</summary>
    public sealed record Snapshot(FrozenDictionary<string, RuntimeSetting> Overrides);

    public async ValueTask<bool> IsSignUpAllowedAsync(CancellationToken cancellationToken) => (await GetAsync(AllowSignUp, cancellationToken)).IsOn;

    public async ValueTask<bool> AreSecurityNoticesOnAsync(CancellationToken cancellationToken) => (await GetAsync(SecurityNotices, cancellationToken)).IsOn;

    public async ValueTask<bool> IsTwoFactorRequiredForAdminsAsync(CancellationToken cancellationToken) =>
        (await GetAsync(RequireTwoFactorForAdmins, cancellationToken)).IsOn;

    public async ValueTask<string> SiteNoticeAsync(CancellationToken cancellationToken) => (await GetAsync(SiteNotice, cancellationToken)).Value;

    public async Task<IReadOnlyList<RuntimeSettingValue>> ListAsync(CancellationToken cancellationToken)
    {
        var values = new List<RuntimeSettingValue>(All.Count);
        foreach (var definition in All)
        {
            values.Add(await GetAsync(definition, cancellationToken));
        }
        return values;
    }

    public async ValueTask<RuntimeSettingValue> GetAsync(RuntimeSettingDefinition definition, CancellationToken cancellationToken)
    {
        var snapshot = await cache.GetOrLoadAsync(CacheKey, scopes, static async (scopes, ct) =>
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<LatchkeyDbContext>();
            var rows = await db.RuntimeSettings.AsNoTracking().ToListAsync(ct);
            return new Snapshot(rows.ToFrozenDictionary(r => r.Key, StringComparer.Ordinal));
        }, cancellationToken);
        var configured = Configured(definition);
        var set = snapshot?.Overrides.GetValueOrDefault(definition.Key);
        return new RuntimeSettingValue(definition, set?.Value ?? configured, configured, set);
    }

    /// <summary>Checks and stores a value; the problem in words when it is refused (nothing changes then).</summary>
    public async Task<string?> SetAsync(string key, string? value, string updatedBy, CancellationToken cancellationToken)
    {
        if (!ByKey.TryGetValue(key, out var definition))
        {
            return $"There is no run-time setting '{key}'.";
        }
        var normalized = (value ?? "").Trim();
        if (definition.Kind == RuntimeSettingKind.Boolean)
        {
            if (!bool.TryParse(normalized, out var on))
            {
                return $"{definition.Label}: the value must be true or false.";
            }
            normalized = on ? "true" : "false";
        }
        else if (normalized.Length > definition.MaxLength)
        {
            return $"{definition.Label}: at most {definition.MaxLength} characters.";
        }
        else if (normalized.Any(char.IsControl))
        {
            return $"{definition.Label}: one line of text, without control characters.";
        }
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LatchkeyDbContext>();
        var row = await db.RuntimeSettings.FirstOrDefaultAsync(s => s.Key == key, cancellationToken);
        if (row is null)
        {
            db.RuntimeSettings.Add(new RuntimeSetting { Key = key, Value = normalized, UpdatedAt = time.GetUtcNow(), UpdatedBy = updatedBy });
        }
        else
        {
            row.Value = normalized;
            row.UpdatedAt = time.GetUtcNow();
            row.UpdatedBy = updatedBy;
        }
        await db.SaveChangesAsync(cancellationToken);
        return null;
    }

    /// <summary>Goes back to the configured value.</summary>
    public async Task ResetAsync(string key, CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LatchkeyDbContext>();
        await db.RuntimeSettings.Where(s => s.Key == key).ExecuteDeleteAsync(cancellationToken);
    }

    private string Configured(RuntimeSettingDefinition definition) =>
        definition == AllowSignUp ? Text(accounts.Value.AllowSignUp)
        : definition == SecurityNotices ? Text(email.Value.SecurityNotices)
        : definition == RequireTwoFactorForAdmins ? Text(accounts.Value.RequireTwoFactorForAdmins)
        : "";

    private static string Text(bool value) => value ? "true" : "false";
}

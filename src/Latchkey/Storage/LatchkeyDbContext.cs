using Latchkey.Features.Accounts;
using Latchkey.Features.ApiKeys;
using Latchkey.Features.AuthorizationServer.Keys;
using Latchkey.Features.AuthorizationServer.Stores;
using Latchkey.Features.Broker.Credentials;
using Latchkey.Features.Broker.Flows;
using Latchkey.Features.Broker.Providers;
using Latchkey.Features.Broker.Vault;
using Latchkey.Features.Mcp;
using Latchkey.Features.Mcp.Approvals;
using Latchkey.Features.Mcp.Policies;
using Latchkey.Features.Mcp.Virtual;
using Latchkey.Features.SecurityEvents;
using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace Latchkey.Storage;

/// <summary>
/// The one database of a Latchkey deployment. Each feature contributes its entities through
/// <see cref="IEntityTypeConfiguration{TEntity}"/> classes in its own folder. The provider-specific
/// subclasses exist only so that SQLite and PostgreSQL each keep their own migrations.
/// </summary>
public abstract class LatchkeyDbContext(DbContextOptions options)
    : IdentityDbContext<LatchkeyUser>(options), IDataProtectionKeyContext
{
    /// <summary>
    /// Set for the duration of bulk updates that change no cached answer, so that they move no
    /// cache revision on (<see cref="LastUseStamp"/>).
    /// </summary>
    internal bool ChangesNothingCached { get; set; }

    /// <summary>The process's SQLite write queue (none on PostgreSQL), for writers that bypass <c>SaveChanges</c>.</summary>
    internal virtual SqliteWriteGate? WriteGate => null;

    public DbSet<DataProtectionKey> DataProtectionKeys => Set<DataProtectionKey>();
    public DbSet<ApiKey> ApiKeys => Set<ApiKey>();
    public DbSet<Features.AccountSecurity.AccountSession> AccountSessions => Set<Features.AccountSecurity.AccountSession>();
    public DbSet<OAuthApplication> OAuthApplications => Set<OAuthApplication>();
    public DbSet<OAuthAuthorization> OAuthAuthorizations => Set<OAuthAuthorization>();
    public DbSet<OAuthToken> OAuthTokens => Set<OAuthToken>();
    public DbSet<OAuthAppLogo> OAuthAppLogos => Set<OAuthAppLogo>();
    public DbSet<ServerKey> ServerKeys => Set<ServerKey>();
    public DbSet<VaultDataKey> VaultDataKeys => Set<VaultDataKey>();
    public DbSet<ProviderInstance> BrokerProviders => Set<ProviderInstance>();
    public DbSet<OAuthFlowState> BrokerFlows => Set<OAuthFlowState>();
    public DbSet<Credential> BrokerCredentials => Set<Credential>();
    public DbSet<CredentialAuditEvent> BrokerCredentialAudit => Set<CredentialAuditEvent>();
    public DbSet<Features.Broker.Connect.ConnectSession> BrokerConnectSessions => Set<Features.Broker.Connect.ConnectSession>();
    public DbSet<Features.Webhooks.WebhookEndpoint> WebhookEndpoints => Set<Features.Webhooks.WebhookEndpoint>();
    public DbSet<Features.Webhooks.WebhookDelivery> WebhookDeliveries => Set<Features.Webhooks.WebhookDelivery>();
    public DbSet<McpServer> McpServers => Set<McpServer>();
    public DbSet<McpToolMapping> McpToolMappings => Set<McpToolMapping>();
    public DbSet<McpToolCall> McpToolCalls => Set<McpToolCall>();
    public DbSet<McpToolPolicy> McpToolPolicies => Set<McpToolPolicy>();
    public DbSet<ToolCallApproval> McpApprovals => Set<ToolCallApproval>();
    public DbSet<McpVirtualServer> McpVirtualServers => Set<McpVirtualServer>();
    public DbSet<SecurityEvent> SecurityEvents => Set<SecurityEvent>();
    public DbSet<Features.Settings.RuntimeSetting> RuntimeSettings => Set<Features.Settings.RuntimeSetting>();

    protected override void OnModelCreating(ModelBuilder builder)
    {
        base.OnModelCreating(builder);
        builder.UseOpenIddict<OAuthApplication, OAuthAuthorization, OAuthScope, OAuthToken, string>();
        builder.ApplyConfigurationsFromAssembly(typeof(LatchkeyDbContext).Assembly);
    }
}

public sealed class SqliteLatchkeyDbContext(DbContextOptions<SqliteLatchkeyDbContext> options) : LatchkeyDbContext(options)
{
    // The process's write queue (see SqliteWriteGate), registered among this context's interceptors.
    private readonly SqliteWriteGate? _writeGate = options.FindExtension<Microsoft.EntityFrameworkCore.Infrastructure.CoreOptionsExtension>()?
        .Interceptors?.OfType<SqliteWriteGate>().FirstOrDefault();

    internal override SqliteWriteGate? WriteGate => _writeGate;

    public override async Task<int> SaveChangesAsync(bool acceptAllChangesOnSuccess, CancellationToken cancellationToken = default)
    {
        var entered = _writeGate is not null && Database.CurrentTransaction is null && await _writeGate.EnterAsync(cancellationToken);
        try
        {
            return await base.SaveChangesAsync(acceptAllChangesOnSuccess, cancellationToken);
        }
        finally
        {
            if (entered)
            {
                _writeGate!.Exit();
            }
        }
    }

    public override int SaveChanges(bool acceptAllChangesOnSuccess)
    {
        var entered = _writeGate is not null && Database.CurrentTransaction is null && _writeGate.Enter();
        try
        {
            return base.SaveChanges(acceptAllChangesOnSuccess);
        }
        finally
        {
            if (entered)
            {
                _writeGate!.Exit();
            }
        }
    }

    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        base.ConfigureConventions(configurationBuilder);
        // SQLite has no date-time type; storing instants as sortable integers lets queries compare
        // and order them in the database (EF cannot translate DateTimeOffset comparisons on TEXT).
        configurationBuilder.Properties<DateTimeOffset>().HaveConversion<DateTimeOffsetToBinaryConverter>();
    }
}

public sealed class PostgresLatchkeyDbContext(DbContextOptions<PostgresLatchkeyDbContext> options) : LatchkeyDbContext(options);

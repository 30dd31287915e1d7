using Latchkey.Cluster;
using Latchkey.Features.Broker.Credentials;
using Latchkey.Features.Broker.Flows;
using Latchkey.Features.Broker.Providers;
using Latchkey.Features.Broker.Vault;
using Latchkey.Features.Operations;
using Latchkey.Storage;

namespace Latchkey.Features.Broker;

/// <summary>The credential broker: providers, OAuth flows on a caller's behalf, stored credentials and their refresh.</summary>
public static class BrokerSetup
{
    public static WebApplicationBuilder AddBroker(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<BrokerOptions>().BindConfiguration(BrokerOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<ProviderCatalog>();
        builder.Services.AddSingleton<SecretVault>();
        builder.Services.AddAuditLog<CredentialAudit, CredentialAuditEvent>();
        builder.Services.AddSingleton<CredentialRefresher>();
        builder.Services.AddHostedService<ProactiveRefresh>();
        builder.Services.AddScoped<CredentialHealth>();
        builder.Services.AddSingleton<HealthCheckJob>();
        builder.Services.AddHostedService(services => services.GetRequiredService<HealthCheckJob>());
        builder.Services.AddProviderHttpClient();
        builder.Services.AddScoped<ProviderClient>();
        builder.Services.AddScoped<ProviderService>();
        builder.Services.AddScoped<FlowService>();
        builder.Services.AddScoped<CredentialService>();
        builder.Services.AddScoped<Proxy.CredentialProxy>();
        builder.Services.AddScoped<Connect.ConnectSessionService>();
        builder.Services.AddCleanupTask<Connect.ConnectSessionCleanup>();
        builder.Services.AddSnapshotCache<Credential>(CacheScope.Credentials);
        builder.Services.AddCacheInvalidation<Credential>(CacheScope.Credentials);
        // A cached credential carries its provider's definition: removing the provider drops it.
        builder.Services.AddCacheInvalidation<ProviderInstance>(CacheScope.Credentials);
        builder.Services.AddCleanupTask<FlowCleanup>();
        builder.Services.AddSummarizedTable<ProviderInstance>("broker providers");
        builder.Services.AddSummarizedTable<Credential>("broker credentials");
        builder.Services.AddSummarizedTable<VaultDataKey>("vault data keys");
        return builder;
    }

    /// <summary>The agent API of the broker (<c>/mcp/oauth</c>, <c>/mcp/providers</c>, <c>/mcp/credentials</c>) and the integrations of the external API.</summary>
    public static WebApplication MapBroker(this WebApplication app)
    {
        app.MapBrokerEndpoints();
        app.MapIntegrationsApi();
        return app;
    }
}

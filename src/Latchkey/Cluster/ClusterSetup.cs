using Latchkey.Storage;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Latchkey.Cluster;

/// <summary>
/// What keeps the nodes' caches and jobs in step: the cache revisions and what moves them on (the
/// invalidation interceptor on every database context), how a change is announced (PostgreSQL
/// <c>NOTIFY</c> between nodes; on SQLite a change feed file from the CLI to the running server),
/// and which node leads the background jobs.
/// </summary>
public static class ClusterSetup
{
    public static WebApplicationBuilder AddCluster(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<CachingOptions>().BindConfiguration(CachingOptions.SectionName)
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<CacheRevisions>();
        builder.Services.AddSingleton<UsageStamps>();
        // Storage adds every registered interceptor to its database contexts.
        builder.Services.AddSingleton<IInterceptor, CacheInvalidationInterceptor>();

        if (StorageSetup.ConfiguredStorage(builder.Configuration).IsPostgres)
        {
            builder.Services.AddOptions<ClusterOptions>().BindConfiguration(ClusterOptions.SectionName)
                .ValidateDataAnnotations().ValidateOnStart();
            builder.Services.AddSingleton<ClusterLink>();
            builder.Services.AddSingleton<ICacheAnnouncer>(services => services.GetRequiredService<ClusterLink>());
            builder.Services.AddSingleton<ICacheAnnouncementSender>(services => services.GetRequiredService<ClusterLink>());
            builder.Services.AddSingleton<IJobLeadership>(services => services.GetRequiredService<ClusterLink>());
            builder.Services.AddHostedService(services => services.GetRequiredService<ClusterLink>());
        }
        else
        {
            builder.Services.AddSingleton<SqliteChangeFeed>();
            builder.Services.AddSingleton<ICacheAnnouncer>(services => services.GetRequiredService<SqliteChangeFeed>());
            builder.Services.AddSingleton<ICacheAnnouncementSender>(services => services.GetRequiredService<SqliteChangeFeed>());
            builder.Services.AddHostedService(services => services.GetRequiredService<SqliteChangeFeed>());
            builder.Services.AddHostedService<SqliteServerPresence>();
            builder.Services.AddSingleton<IJobLeadership, SingleNodeLeadership>();
        }
        return builder;
    }
}

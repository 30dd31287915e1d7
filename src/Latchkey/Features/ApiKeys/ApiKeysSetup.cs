using Latchkey.Cluster;
using Latchkey.Storage;

namespace Latchkey.Features.ApiKeys;

/// <summary>API keys for server-to-server calls: created, listed and revoked by their owners, checked on every call.</summary>
public static class ApiKeysSetup
{
    public static WebApplicationBuilder AddApiKeys(this WebApplicationBuilder builder)
    {
        builder.Services.AddScoped<ApiKeyService>();
        builder.Services.AddSnapshotCache<ApiKeySnapshot>(CacheScope.ApiKeys);
        builder.Services.AddCacheInvalidation<ApiKey>(CacheScope.ApiKeys);
        builder.Services.AddSummarizedTable<ApiKey>("API keys");
        return builder;
    }

    public static WebApplication MapApiKeys(this WebApplication app)
    {
        app.MapApiKeyEndpoints();
        return app;
    }
}

using Latchkey.Cluster;

namespace Latchkey.Features.Settings;

/// <summary>Settings an administrator may change while the server runs (<see cref="RuntimeSettings"/>).</summary>
public static class SettingsSetup
{
    public static WebApplicationBuilder AddRuntimeSettings(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<RuntimeSettings>();
        builder.Services.AddSnapshotCache<RuntimeSettings.Snapshot>(CacheScope.Settings);
        builder.Services.AddCacheInvalidation<RuntimeSetting>(CacheScope.Settings, onInsert: true);
        return builder;
    }
}

using Latchkey.Features.Operations;
using Latchkey.Storage;

namespace Latchkey.Features.SecurityEvents;

/// <summary>The account's security log: recorded by the other features through <see cref="SecurityEventLog"/>, read by its owner.</summary>
public static class SecurityEventsSetup
{
    public static WebApplicationBuilder AddSecurityEvents(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<SecurityEventOptions>().BindConfiguration(SecurityEventOptions.SectionName)
            .ValidateDataAnnotations().ValidateOnStart();
        // Events name the address and user agent of the request that caused them, wherever they are recorded.
        builder.Services.AddHttpContextAccessor();
        builder.Services.AddAuditLog<SecurityEventLog, SecurityEvent>();
        builder.Services.AddScoped<SecurityEventHistory>();
        // Events past SecurityEvents:RetentionDays go with the clean-up.
        builder.Services.AddScoped<ICleanupTask>(services => services.GetRequiredService<SecurityEventHistory>());
        return builder;
    }

    public static WebApplication MapSecurityEvents(this WebApplication app)
    {
        app.MapSecurityEventEndpoints();
        return app;
    }
}

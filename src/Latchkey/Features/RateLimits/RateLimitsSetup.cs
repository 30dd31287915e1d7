using Microsoft.Extensions.Options;

namespace Latchkey.Features.RateLimits;

/// <summary>Rate limits per client, API key and source address in front of the token, authorize, sign-in and broker endpoints.</summary>
public static class RateLimitsSetup
{
    public static WebApplicationBuilder AddRateLimits(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<RateLimitOptions>().BindConfiguration(RateLimitOptions.SectionName)
            .ValidateDataAnnotations()
            .Validate(options => new[]
                {
                    options.TokenPerClient, options.TokenPerAddress, options.AuthorizePerAddress,
                    options.SignInPerAddress, options.BrokerPerApiKey, options.BrokerPerAddress,
                }.All(limit => limit.PerMinute > 0 && limit.Burst > 0),
                "Every RateLimits entry needs PerMinute and Burst of at least 1.")
            .ValidateOnStart();
        builder.Services.AddSingleton<RequestRateLimiter>();
        return builder;
    }

    /// <summary>After forwarded headers (so the source address is the client's), before authentication and OpenIddict.</summary>
    public static WebApplication UseRateLimits(this WebApplication app)
    {
        if (app.Services.GetRequiredService<IOptions<RateLimitOptions>>().Value.Enabled)
        {
            var limiter = app.Services.GetRequiredService<RequestRateLimiter>();
            app.Use(limiter.InvokeAsync);
        }
        return app;
    }
}

using Microsoft.AspNetCore.Authorization;

namespace Latchkey.Features.ExternalApi;

/// <summary>
/// The external API third parties call with an API key or an access token: its authentication
/// scheme (which the agent API and the security log use too), scope requirements, and <c>/me</c>.
/// </summary>
public static class ExternalApiSetup
{
    public static WebApplicationBuilder AddExternalApi(this WebApplicationBuilder builder)
    {
        builder.Services.AddAuthentication()
            .AddScheme<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions, ExternalApiAuthenticationHandler>(
                ExternalApiAuthenticationHandler.SchemeName, displayName: "API key or access token", _ => { });
        builder.Services.AddSingleton<IAuthorizationHandler, ScopeRequirementHandler>();
        builder.Services.AddSingleton<IAuthorizationHandler, OwnAudienceRequirementHandler>();
        builder.Services.AddSingleton<IAuthorizationMiddlewareResultHandler, InsufficientScopeResultHandler>();
        return builder;
    }

    public static WebApplication MapExternalApi(this WebApplication app)
    {
        app.MapExternalApiEndpoints();
        return app;
    }
}

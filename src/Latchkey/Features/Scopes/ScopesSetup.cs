using Microsoft.Extensions.Options;

namespace Latchkey.Features.Scopes;

/// <summary>The scope catalog (configuration) every API key, app and token draws its scopes from, and <c>GET /api/scopes</c>.</summary>
public static class ScopesSetup
{
    public sealed record ScopeList(IReadOnlyList<ScopeDefinition> Scopes);

    public static WebApplicationBuilder AddScopes(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<IValidateOptions<ScopeCatalogOptions>, ScopeCatalogOptionsValidator>();
        builder.Services.AddOptions<ScopeCatalogOptions>().BindConfiguration(ScopeCatalogOptions.SectionName).ValidateOnStart();
        builder.Services.AddSingleton<ScopeCatalog>();
        return builder;
    }

    public static WebApplication MapScopes(this WebApplication app)
    {
        app.MapGet("/api/scopes", (ScopeCatalog catalog) => TypedResults.Ok(new ScopeList(catalog.All)))
            .WithTags("Scopes")
            .WithSummary("The scope catalog: every scope a key or app may be granted, in plain words");
        return app;
    }
}

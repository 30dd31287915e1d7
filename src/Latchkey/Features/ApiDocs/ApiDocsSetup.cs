using Scalar.AspNetCore;

namespace Latchkey.Features.ApiDocs;

/// <summary>The OpenAPI document (<c>/openapi/v1.json</c>) and its browsable reference (<c>/docs</c>).</summary>
public static class ApiDocsSetup
{
    public const string DocumentName = "v1";
    public const string DocumentPath = "/openapi/v1.json";

    public static WebApplicationBuilder AddApiDocs(this WebApplicationBuilder builder)
    {
        builder.Services.AddOpenApi(DocumentName, options =>
        {
            options.AddDocumentTransformer((document, _, _) =>
            {
                document.Info.Title = "Latchkey API";
                document.Info.Description = "Identity and credential hub for AI-agent platforms.";
                return Task.CompletedTask;
            });
            options.AddDocumentTransformer(SecuritySchemeTransformers.AddSchemes);
            options.AddOperationTransformer(SecuritySchemeTransformers.AddRequirements);
        });
        return builder;
    }

    public static WebApplication MapApiDocs(this WebApplication app)
    {
        app.MapOpenApi("/openapi/{documentName}.json");
        app.UseApiReferencePolicy("/docs/");
        app.MapScalarApiReference("/docs", options => options
            .WithTitle("Latchkey API")
            // A self-hosted reference loads nothing from a CDN: the page's policy allows this server only.
            .DisableDefaultFonts()
            // Latchkey's reference, not an advert: no AI chat or MCP offers from Scalar's cloud, no
            // telemetry, no developer toolbar or client download pointing at Scalar's products.
            .DisableAgent()
            .DisableMcp()
            .DisableTelemetry()
            .HideDeveloperTools()
            .HideClientButton()
            // Its sidebar's "Powered by" link has no setting; its authors point to custom CSS for it.
            .WithCustomCss("a[href*=\"scalar.com\"] { display: none !important; }")
            .WithOpenApiRoutePattern("/openapi/{documentName}.json"));
        return app;
    }
}

namespace Latchkey.Features.Site;

/// <summary>
/// What every page shares: the error pages for browsers, the security headers of every response
/// (BrowserHardening), and the stylesheet and script.
/// </summary>
public static class SiteSetup
{
    /// <summary>Browser-facing error pages; registered first so they win over the JSON writer for text/html requests.</summary>
    public static WebApplicationBuilder AddSite(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<SiteOptions>().BindConfiguration(SiteOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.Insert(0, ServiceDescriptor.Singleton<IProblemDetailsWriter, HtmlErrorPages>());
        return builder;
    }

    /// <summary>First in the pipeline, so that every answer (errors included) carries the security headers.</summary>
    public static WebApplication UseSite(this WebApplication app) => app.UseBrowserHardening();

    public static WebApplication MapSite(this WebApplication app) => app.MapSiteAssets();
}

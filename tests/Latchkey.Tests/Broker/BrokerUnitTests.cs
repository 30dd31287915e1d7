using Latchkey.Features.Broker.Providers;

namespace Latchkey.Tests.Broker;

public sealed class BrokerUnitTests
{
    [Fact]
    public void The_catalog_has_at_least_25_providers_all_on_https()
    {
        var catalog = new ProviderCatalog();

        Assert.True(catalog.All.Count >= 25);
        foreach (var key in new[] { "github", "google", "slack", "microsoft", "notion", "atlassian", "salesforce", "dropbox", "linear", "discord", "gitlab",
                     "bitbucket", "zoom", "hubspot", "asana", "figma", "spotify", "x", "linkedin", "box", "airtable", "intercom", "shopify", "stripe", "calendly" })
        {
            Assert.NotNull(catalog.Find(key));
        }
        Assert.All(catalog.All.SelectMany(p => p.Urls), url => Assert.StartsWith("https://", url));
        Assert.Equal("offline", catalog.Find("google")!.ExtraAuthorizeParams["access_type"]);
        Assert.Equal("authed_user", catalog.Find("slack")!.TokenPath);
        Assert.Equal("basic", catalog.Find("notion")!.TokenAuth);
    }

    [Fact]
    public void Templated_urls_take_their_values_and_refuse_anything_but_a_host_name()
    {
        var shopify = new ProviderCatalog().Find("shopify")!;

        var (resolved, _) = ProviderCatalog.Resolve(shopify, new Dictionary<string, string> { ["shop"] = "acme" });
        Assert.Equal("https://acme.myshopify.com/admin/oauth/authorize", resolved!.AuthorizeUrl);

        Assert.NotNull(ProviderCatalog.Resolve(shopify, new Dictionary<string, string>()).Error);
        Assert.NotNull(ProviderCatalog.Resolve(shopify, new Dictionary<string, string> { ["shop"] = "evil.example/x?" }).Error);
        Assert.NotNull(ProviderCatalog.Resolve(shopify, new Dictionary<string, string> { ["shop"] = "a@b" }).Error);
    }

}

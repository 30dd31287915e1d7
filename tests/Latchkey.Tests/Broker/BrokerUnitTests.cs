using Latchkey.Features.Broker;
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

    [Fact]
    public void Master_keys_made_in_the_same_second_get_different_ids_and_none_is_replaced()
    {
        // Ids were the time to the second: a rotation in the second the key file was made
        // replaced the key under the same id, and the data keys it had wrapped no longer opened.
        var file = Path.Combine(Path.GetTempPath(), "latchkey-tests", $"vault-{Guid.NewGuid():N}.json");
        try
        {
            var keys = new Latchkey.Features.Broker.Vault.MasterKeys(Microsoft.Extensions.Options.Options.Create(
                new Latchkey.Features.Broker.Vault.VaultOptions { KeyFile = file }));
            var first = keys.ActiveId;
            var firstKey = keys.Get(first).ToArray();
            var second = keys.AddToKeyFile();
            var third = keys.AddToKeyFile();

            Assert.Equal(3, new[] { first, second, third }.Distinct().Count());
            Assert.Equal(firstKey, keys.Get(first));
            var reloaded = new Latchkey.Features.Broker.Vault.MasterKeys(Microsoft.Extensions.Options.Options.Create(
                new Latchkey.Features.Broker.Vault.VaultOptions { KeyFile = file }));
            Assert.Equal(firstKey, reloaded.Get(first));
            Assert.Equal(third, reloaded.ActiveId);
        }
        finally
        {
            File.Delete(file);
        }
    }
}

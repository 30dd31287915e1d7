using System.Text;
using System.Text.RegularExpressions;
using Latchkey.Features.Broker;
using Latchkey.Features.Broker.Credentials;
using Latchkey.Features.Broker.Providers;
using Latchkey.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Latchkey.Tests.Broker;

/// <summary>
/// The shipped provider catalog: every entry is a definition Latchkey accepts, and the providers
/// that send credentials in an unusual way (their own scheme, header or fixed Basic half) do so
/// on the wire, checked against the loopback API of <see cref="TestOAuthProvider"/>.
/// </summary>
public sealed partial class ProviderCatalogTests : IAsyncLifetime
{
    private static readonly ProviderCatalog Catalog = new();

    private TestOAuthProvider _provider = null!;
    private ServiceProvider _services = null!;
    private ProviderApi _api = null!;

    public async Task InitializeAsync()
    {
        _provider = await TestOAuthProvider.StartAsync();
        // The default named client: the SSRF guard is not what these tests are about, the headers are.
        _services = new ServiceCollection().AddHttpClient().BuildServiceProvider();
        _api = new ProviderApi(_services.GetRequiredService<IHttpClientFactory>(), Options.Create(new BrokerOptions { AllowPrivateNetworks = true }));
    }

    public async Task DisposeAsync()
    {
        await _services.DisposeAsync();
        await _provider.DisposeAsync();
    }

    [Fact]
    public void The_catalog_ships_at_least_60_providers_under_unique_lowercase_keys()
    {
        Assert.True(Catalog.All.Count >= 60, $"The catalog has {Catalog.All.Count} providers.");
        Assert.Equal(Catalog.All.Count, Catalog.All.Select(p => p.Key).Distinct(StringComparer.Ordinal).Count());
        Assert.All(Catalog.All, p => Assert.Matches(KeyPattern(), p.Key));
    }

    [Fact]
    public void Every_entry_passes_the_definition_rules_as_shipped_and_once_its_template_is_filled()
    {
        var problems = new List<string>();
        foreach (var entry in Catalog.All)
        {
            // A URL with a placeholder ({shop}) is not a URL until it is filled, so only entries
            // without a template can be checked as shipped; every entry is checked filled, which
            // is the definition a provider instance stores.
            if (entry.Template.Count == 0 && ProviderDefinitionRules.Check(entry) is { } shipped)
            {
                problems.Add($"{entry.Key} as shipped: {shipped}");
            }
            var placeholders = entry.Urls.Concat(entry.ApiHosts).SelectMany(u => Placeholder().Matches(u)).Select(m => m.Groups[1].Value).ToHashSet();
            if (!placeholders.SetEquals(entry.Template.Keys))
            {
                problems.Add($"{entry.Key}: placeholders {string.Join(", ", placeholders)} but template {string.Join(", ", entry.Template.Keys)}");
                continue;
            }
            var (resolved, error) = ProviderCatalog.Resolve(entry, DummyTemplateValues(entry));
            if (resolved is null)
            {
                problems.Add($"{entry.Key}: {error}");
                continue;
            }
            if (ProviderDefinitionRules.Check(resolved) is { } filled)
            {
                problems.Add($"{entry.Key} filled in: {filled}");
            }
            if (resolved.Urls.Concat(resolved.ApiHosts).FirstOrDefault(u => u.Contains('{')) is { } unfilled)
            {
                problems.Add($"{entry.Key}: {unfilled} still has a placeholder");
            }
        }
        Assert.Empty(problems);
    }

    [Fact]
    public void Every_entry_declares_its_api_and_every_test_request_stays_below_it()
    {
        Assert.All(Catalog.All, entry =>
        {
            Assert.False(string.IsNullOrEmpty(entry.ApiBaseUrl), $"{entry.Key} has no api_base_url.");
            var resolved = Resolved(entry);
            if (resolved.TestRequest is { } test)
            {
                // ProviderApi.TestAsync silently skips a test request that would leave the base.
                Assert.True(ProviderApi.Target(resolved, test.Path) is not null, $"{entry.Key}'s test request {test.Path} leaves {resolved.ApiBaseUrl}.");
            }
        });
    }

    [Fact]
    public void Every_auth_type_is_represented()
    {
        Assert.Equal(AuthTypes.All.Order(), Catalog.All.Select(p => p.AuthType).Distinct().Order());
    }

    [Fact]
    public void Every_basic_entry_leaves_the_person_something_to_type()
    {
        // A provider that fixed both the user name and the password would have no secret at all.
        Assert.All(Catalog.All.Where(p => p.AuthType == AuthTypes.Basic), entry => Assert.NotEmpty(CredentialMaterial.Fields(entry)));
    }

    /// <summary>
    /// How a provider with an unusual way of sending its credential is connected: what a person
    /// types (built from one secret value, null for OAuth where the secret is the token) and the
    /// headers its API must then receive.
    /// </summary>
    private sealed record Quirk(Func<string, CredentialCreateRequest>? Typed, Func<string, Dictionary<string, string>> Expected);

    private static readonly Dictionary<string, Quirk> Quirks = new()
    {
        // Their own schemes in Authorization, or none at all.
        ["pagerduty"] = new(ApiKey, key => new() { ["Authorization"] = $"Token token={key}" }),
        ["linear_api_key"] = new(ApiKey, key => new() { ["Authorization"] = key }),
        ["deepgram"] = new(ApiKey, key => new() { ["Authorization"] = $"Token {key}" }),
        ["okta_api_token"] = new(ApiKey, key => new() { ["Authorization"] = $"SSWS {key}" }),
        ["klaviyo"] = new(ApiKey, key => new() { ["Authorization"] = $"Klaviyo-API-Key {key}", ["revision"] = "2024-10-15" }),
        ["zoho"] = new(null, token => new() { ["Authorization"] = $"Zoho-oauthtoken {token}" }),
        // Their own headers, some with a fixed companion header.
        ["anthropic"] = new(ApiKey, key => new() { ["x-api-key"] = key, ["anthropic-version"] = "2023-06-01" }),
        ["postmark"] = new(ApiKey, key => new() { ["X-Postmark-Server-Token"] = key }),
        ["notion_internal"] = new(Token, token => new() { ["Authorization"] = $"Bearer {token}", ["Notion-Version"] = "2022-06-28" }),
        ["shopify"] = new(null, token => new() { ["X-Shopify-Access-Token"] = token }),
        // Basic with one half fixed: what the person types for that half is ignored.
        ["mailchimp"] = new(key => Basic("typed-user-is-ignored", key), key => BasicHeader("anystring", key)),
        ["mailgun"] = new(key => Basic(null, key), key => BasicHeader("api", key)),
        ["freshdesk"] = new(key => Basic(key, "typed-password-is-ignored"), key => BasicHeader(key, "X")),
        ["twilio"] = new(token => Basic("AC0123456789", token), token => BasicHeader("AC0123456789", token)),
        // Several secret headers.
        ["algolia"] = new(key => Headers(new() { ["X-Algolia-Application-Id"] = "ACME1", ["X-Algolia-API-Key"] = key }),
            key => new() { ["X-Algolia-Application-Id"] = "ACME1", ["X-Algolia-API-Key"] = key }),
        ["datadog_app_key"] = new(key => Headers(new() { ["DD-API-KEY"] = "dd-api", ["DD-APPLICATION-KEY"] = key }),
            key => new() { ["DD-API-KEY"] = "dd-api", ["DD-APPLICATION-KEY"] = key }),
    };

    [Theory]
    [InlineData("pagerduty")]
    [InlineData("linear_api_key")]
    [InlineData("deepgram")]
    [InlineData("okta_api_token")]
    [InlineData("klaviyo")]
    [InlineData("zoho")]
    [InlineData("anthropic")]
    [InlineData("postmark")]
    [InlineData("notion_internal")]
    [InlineData("shopify")]
    [InlineData("mailchimp")]
    [InlineData("mailgun")]
    [InlineData("freshdesk")]
    [InlineData("twilio")]
    [InlineData("algolia")]
    [InlineData("datadog_app_key")]
    public async Task A_quirky_provider_sends_its_credential_as_its_API_expects_and_a_wrong_one_is_refused(string key)
    {
        var quirk = Quirks[key];
        var definition = PointedAtLoopback(Catalog.Find(key)!);
        var expected = quirk.Expected("secret-value-1");
        _provider.ApiAccepts = headers => expected.All(h => headers[h.Key].ToString() == h.Value);

        var works = await _api.TestAsync(definition, HeadersFor(definition, quirk, "secret-value-1"), CancellationToken.None);

        Assert.True(works.Works, works.Message);
        var seen = Assert.Single(_provider.ApiRequests);
        Assert.Equal(definition.TestRequest!.Method, seen.Method);
        Assert.Equal($"{new Uri(definition.ApiBaseUrl!).AbsolutePath}{definition.TestRequest.Path}", seen.PathAndQuery);
        foreach (var (name, value) in expected)
        {
            Assert.True(seen.Headers.TryGetValue(name, out var sent), $"{key} did not send {name}.");
            Assert.Equal(value, sent);
        }
        // The credential goes only where the provider wants it: no stray Authorization beside a custom header.
        if (!expected.ContainsKey("Authorization"))
        {
            Assert.False(seen.Headers.ContainsKey("Authorization"), $"{key} also sent Authorization: {seen.Headers.GetValueOrDefault("Authorization")}");
        }

        var refused = await _api.TestAsync(definition, HeadersFor(definition, quirk, "wrong"), CancellationToken.None);

        Assert.False(refused.Works);
        Assert.True(refused.Refused);
        Assert.Equal(401, refused.Status);
    }

    /// <summary>The headers an API call carries for a secret typed in (or, for OAuth, issued) as the quirk says, stored as CredentialMaterial stores it.</summary>
    private static Dictionary<string, string> HeadersFor(ProviderDefinition definition, Quirk quirk, string value)
    {
        var secret = value;
        if (quirk.Typed is { } typed)
        {
            var (material, error) = CredentialMaterial.FromRequest(definition, typed(value));
            Assert.True(material is not null, error);
            secret = material;
        }
        return CredentialMaterial.Headers(definition, definition.AuthType, secret);
    }

    /// <summary>
    /// The catalog entry, filled in and aimed at the loopback API: the same path below the base
    /// (<c>/api</c> + the provider's own base path), with loopback as its only host. GraphQL-only
    /// APIs (Linear) have no request to try, so a GET below the same base stands in for one.
    /// </summary>
    private ProviderDefinition PointedAtLoopback(ProviderDefinition entry)
    {
        var resolved = Resolved(entry);
        var basePath = new Uri(resolved.ApiBaseUrl!).AbsolutePath.TrimEnd('/');
        return resolved with
        {
            ApiBaseUrl = $"{_provider.BaseAddress}api{basePath}",
            ApiHosts = ["127.0.0.1"],
            TestRequest = resolved.TestRequest ?? new ProviderTestRequest { Method = "GET", Path = "/probe" },
        };
    }

    private static ProviderDefinition Resolved(ProviderDefinition entry)
    {
        var (resolved, error) = ProviderCatalog.Resolve(entry, DummyTemplateValues(entry));
        Assert.True(resolved is not null, $"{entry.Key}: {error}");
        return resolved;
    }

    /// <summary>"acme" for every template value the entry requires (a null default); the others keep their defaults.</summary>
    private static Dictionary<string, string> DummyTemplateValues(ProviderDefinition entry) =>
        entry.Template.Where(t => t.Value is null).ToDictionary(t => t.Key, _ => "acme");

    private static CredentialCreateRequest ApiKey(string key) => new(null, key, null, null, null, null, null, null, null, null, null);

    private static CredentialCreateRequest Token(string token) => new(null, null, token, null, null, null, null, null, null, null, null);

    private static CredentialCreateRequest Basic(string? username, string? password) => new(null, null, null, username, password, null, null, null, null, null, null);

    private static CredentialCreateRequest Headers(Dictionary<string, string> headers) => new(null, null, null, null, null, headers, null, null, null, null, null);

    private static Dictionary<string, string> BasicHeader(string username, string password) =>
        new() { ["Authorization"] = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{username}:{password}")) };

    [GeneratedRegex("^[a-z0-9_]+$")]
    private static partial Regex KeyPattern();

    [GeneratedRegex(@"\{([a-z_]+)\}")]
    private static partial Regex Placeholder();
}

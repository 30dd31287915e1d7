using Latchkey.Features.Scopes;
using Latchkey.Storage;
using Microsoft.Extensions.Options;

namespace Latchkey.Tests.Common;

public sealed class ConfigurationValidationTests
{
    [Theory]
    [InlineData("oracle", null, "must be 'sqlite' or 'postgres'")]
    [InlineData("postgres", null, "ConnectionStrings:Latchkey is empty")]
    public void Bad_storage_settings_fail_with_a_clear_message(string provider, string? connectionString, string expected)
    {
        var result = new StorageOptionsValidator().Validate(null, new StorageOptions { Provider = provider, ConnectionString = connectionString });

        Assert.True(result.Failed);
        Assert.Contains(expected, result.FailureMessage);
    }

    [Fact]
    public void Default_storage_settings_are_valid() =>
        Assert.True(new StorageOptionsValidator().Validate(null, new StorageOptions()).Succeeded);

    [Fact]
    public void A_scope_catalog_with_duplicates_or_blank_descriptions_is_refused()
    {
        var options = new ScopeCatalogOptions
        {
            Catalog =
            [
                new() { Name = "A", Description = "first" },
                new() { Name = "A", Description = "again" },
                new() { Name = "has space", Description = "bad name" },
                new() { Name = "B", Description = " " },
            ],
        };

        var result = new ScopeCatalogOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        Assert.Contains("appears twice", result.FailureMessage);
        Assert.Contains("not a valid scope name", result.FailureMessage);
        Assert.Contains("Description is empty", result.FailureMessage);
    }

    [Fact]
    public void Without_configuration_the_catalog_is_the_reference_default()
    {
        var catalog = new ScopeCatalog(Options.Create(new ScopeCatalogOptions()));

        // The reference system's ten scopes, and Latchkey's own READ_SECURITY_EVENTS.
        Assert.Equal(11, catalog.All.Count);
        Assert.True(catalog.Contains("IDENTITY"));
        Assert.True(catalog.Contains("DELETE_INTEGRATIONS"));
        Assert.True(catalog.Contains("READ_SECURITY_EVENTS"));
    }

    [Fact]
    public void Requested_scopes_come_back_in_catalog_order()
    {
        var catalog = new ScopeCatalog(Options.Create(new ScopeCatalogOptions()));

        Assert.True(catalog.TryNormalize(["USE_TOOLS", "IDENTITY"], out var scopes, out _));
        Assert.Equal(["IDENTITY", "USE_TOOLS"], scopes);
    }

    [Fact]
    public void A_configured_catalog_replaces_the_default()
    {
        var catalog = new ScopeCatalog(Options.Create(new ScopeCatalogOptions { Catalog = [new() { Name = "CUSTOM", Description = "custom" }] }));

        Assert.True(catalog.Contains("CUSTOM"));
        Assert.False(catalog.Contains("IDENTITY"));
    }
}

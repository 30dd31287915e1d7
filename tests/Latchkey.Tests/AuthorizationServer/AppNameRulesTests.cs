using Latchkey.Features.AuthorizationServer;
using Latchkey.Features.AuthorizationServer.Apps;
using Latchkey.Features.Operations;
using Latchkey.Features.Scopes;
using Microsoft.Extensions.Options;

namespace Latchkey.Tests.AuthorizationServer;

/// <summary>The pure rules behind app names and displayed metadata, and the anonymous scope setting.</summary>
public sealed class AppNameRulesTests
{
    [Theory]
    [InlineData("Latchkey", "latchkey")]
    [InlineData("L\u0430tchkey", "latchkey")]       // Cyrillic а
    [InlineData("L4TCHK3Y", "latchkey")]
    [InlineData("Ｌａｔｃｈｋｅｙ", "latchkey")]
    [InlineData("L a-t_c.h k e y!", "latchkey")]
    [InlineData("Modern", "modem")]                  // rn passes for m
    [InlineData("vvide", "wlde")]                     // vv passes for w, i for l
    [InlineData("$ecure @pp", "secureapp")]
    public void A_skeleton_is_what_a_name_looks_like(string name, string skeleton) =>
        Assert.Equal(skeleton, NameSkeleton.Of(name));

    [Fact]
    public void Loopback_and_ip_addresses_are_not_protected_names_but_real_hosts_are()
    {
        var names = new PlatformNames(
            Options.Create(new AuthorizationServerOptions { Issuer = "http://127.0.0.1:5000/" }),
            Options.Create(new ServerOptions { PublicUrl = "https://login.example.org" }));

        Assert.Equal(["Latchkey", "login.example.org"], names.Protected);
        Assert.Equal("login.example.org", names.Imitated("LOGIN EXAMPLE ORG"));
        Assert.Null(names.Imitated("127.0.0.1 tools"));
        Assert.Null(names.Imitated("Example login"));
    }

    [Theory]
    [InlineData("plain text", null)]
    [InlineData("emoji 🔑 and accents é", null)]
    [InlineData("right\u202Eleft", "U+202E")]
    [InlineData("zero\u200Bwidth", "U+200B")]
    [InlineData("nul\u0000", "U+0000")]
    [InlineData("private \uE000 use", "U+E000")]
    [InlineData("line\u2028separator", "U+2028")]
    [InlineData("two\r\nlines", "U+000D")]
    public void Hidden_characters_are_found_by_code_point(string value, string? expected) =>
        Assert.Equal(expected, DisplayedText.FirstHiddenCharacter(value));

    [Fact]
    public void A_lone_surrogate_is_hidden_and_not_shown()
    {
        // Built at run time: attribute arguments are stored as UTF-8, which has no lone surrogates.
        var value = "lone " + (char)0xD800 + " surrogate";

        Assert.Equal("U+D800", DisplayedText.FirstHiddenCharacter(value));
        Assert.Equal("lone  surrogate", DisplayedText.ForDisplay(value));
        Assert.Null(DisplayedText.FirstHiddenCharacter("pair \U0001F511 key"));
    }

    [Fact]
    public void Line_breaks_are_allowed_only_where_asked() =>
        Assert.Null(DisplayedText.FirstHiddenCharacter("two\r\nlines", allowLineBreaks: true));

    [Theory]
    [InlineData("Harmless\u202Egpj.exe", "Harmlessgpj.exe")]
    [InlineData("Zero\u200Bwidth\uFEFF", "Zerowidth")]
    [InlineData("tab\tand\r\nbreak", "tab and  break")]
    [InlineData("🔑 Keys", "🔑 Keys")]
    public void Stored_text_is_shown_without_its_hidden_characters(string stored, string shown) =>
        Assert.Equal(shown, DisplayedText.ForDisplay(stored));

    [Fact]
    public void The_default_anonymous_scopes_leave_out_what_a_configured_catalog_lacks()
    {
        var catalog = new ScopeCatalog(Options.Create(new ScopeCatalogOptions { Catalog = [new() { Name = "IDENTITY", Description = "Who you are" }] }));

        var scopes = new AnonymousRegistrationScopes(Options.Create(new AuthorizationServerOptions()), catalog);

        Assert.Equal(["openid", "profile", "email", "IDENTITY"], scopes.Allowed);
        Assert.True(scopes.Permits("offline_access"));
        Assert.False(scopes.Permits("USE_TOOLS"));
    }

    [Fact]
    public void A_configured_anonymous_scope_that_is_not_known_fails_validation()
    {
        var catalog = new ScopeCatalog(Options.Create(new ScopeCatalogOptions()));
        var validator = new AuthorizationServerOptionsValidator(catalog);

        var bad = validator.Validate(null, new AuthorizationServerOptions { AnonymousRegistrationScopes = ["openid", "GOD_MODE"] });
        var good = validator.Validate(null, new AuthorizationServerOptions { AnonymousRegistrationScopes = ["openid", "USE_TOOLS"] });

        Assert.True(bad.Failed);
        Assert.Contains("AuthorizationServer:AnonymousRegistrationScopes:1 'GOD_MODE' is not a known scope", bad.FailureMessage);
        Assert.True(good.Succeeded);
        Assert.True(validator.Validate(null, new AuthorizationServerOptions()).Succeeded);
    }
}

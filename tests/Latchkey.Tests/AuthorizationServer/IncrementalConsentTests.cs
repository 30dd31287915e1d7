using System.Net;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using static Latchkey.Tests.Infrastructure.OAuthClient;

namespace Latchkey.Tests.AuthorizationServer;

/// <summary>
/// Step-up: a resource names the one scope an operation needs (403 insufficient_scope), the app
/// asks for just that scope, the person is asked about just that scope, and the consent (and, with
/// include_granted_scopes, the token) covers what was granted before as well.
/// </summary>
public abstract class IncrementalConsentTests(LatchkeyServerFixture server)
{
    [Fact]
    public async Task A_token_without_the_scope_an_operation_needs_gets_a_challenge_naming_only_that_scope_and_step_up_fixes_it()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner);
        var user = await TestAccounts.SignUpAsync(server);
        var first = await SignInAsync(user, app, "READ_GRAPH");

        var refused = await CallMeAsync(server.CreateClient(), Access(first));

        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        var challenge = refused.Headers.WwwAuthenticate.Single(h => h.Scheme == "Bearer").Parameter!;
        Assert.Contains("error=\"insufficient_scope\"", challenge);
        Assert.Contains("scope=\"IDENTITY\"", challenge);

        // The app asks for the one scope it lacks; the consent page asks about that one only.
        var (verifier, challengeValue) = NewPkce();
        var url = AuthorizeUrl(app, "IDENTITY", challengeValue, extra: new Dictionary<string, string?> { ["include_granted_scopes"] = "true" });
        var page = await (await user.Session.GetAsync(url)).Content.ReadAsStringAsync();
        var newScopes = Section(page, "new-scopes");
        Assert.Contains("(IDENTITY)", newScopes);
        Assert.DoesNotContain("(READ_GRAPH)", newScopes);
        Assert.Contains("You already allowed", page);
        var outcome = await AuthorizeAsync(user.Session, url);
        var stepped = await RedeemCodeAsync(server.CreateClient(), app, outcome.Query["code"], verifier);

        Assert.Equal(["IDENTITY", "READ_GRAPH"], stepped.GetProperty("scope").GetString()!.Split(' ').Order());
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(server.CreateClient(), Access(stepped))).StatusCode);
        // One remembered consent, now for both.
        var userId = await server.WithDbAsync(db => db.Users.Where(u => u.Email == user.Email).Select(u => u.Id).SingleAsync());
        var consents = await server.WithDbAsync(db => db.OAuthAuthorizations.AsNoTracking()
            .Where(a => a.Subject == userId && a.Type == OpenIddictConstants.AuthorizationTypes.Permanent).Select(a => a.Scopes).ToListAsync());
        var consent = Assert.Single(consents);
        Assert.Contains("IDENTITY", consent);
        Assert.Contains("READ_GRAPH", consent);
    }

    [Fact]
    public async Task Without_include_granted_scopes_the_token_has_exactly_what_was_asked_for()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner);
        var user = await TestAccounts.SignUpAsync(server);
        await SignInAsync(user, app, "IDENTITY");

        var second = await SignInAsync(user, app, "READ_GRAPH");

        Assert.Equal("READ_GRAPH", second.GetProperty("scope").GetString());
        // Both are remembered: a third request for both needs no consent page.
        var (_, challenge) = NewPkce();
        var both = await user.Session.GetAsync(AuthorizeUrl(app, "IDENTITY READ_GRAPH", challenge));
        Assert.Equal(HttpStatusCode.Redirect, both.StatusCode);
        Assert.Contains("code=", both.Headers.Location!.Query);
    }

    private async Task<JsonElement> SignInAsync(TestAccount user, RegisteredApp app, string scope)
    {
        var (code, verifier) = await GetCodeAsync(user, app, scope);
        return await RedeemCodeAsync(server.CreateClient(), app, code, verifier);
    }

    private static string Access(JsonElement tokens) => tokens.GetProperty("access_token").GetString()!;

    /// <summary>The HTML of the element with this id, up to its closing tag.</summary>
    private static string Section(string html, string id)
    {
        var start = html.IndexOf($"id=\"{id}\"", StringComparison.Ordinal);
        Assert.True(start >= 0, $"No element {id} on the page.");
        return html[start..html.IndexOf("</ul>", start, StringComparison.Ordinal)];
    }
}

public sealed class IncrementalConsentTestsOnSqlite(SqliteServer server) : IncrementalConsentTests(server), IClassFixture<SqliteServer>;

public sealed class IncrementalConsentTestsOnPostgres(PostgresServer server) : IncrementalConsentTests(server), IClassFixture<PostgresServer>;

using System.Net;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using static Latchkey.Tests.Infrastructure.OAuthClient;

namespace Latchkey.Tests.AuthorizationServer;

/// <summary>
/// Client ID Metadata Documents: a client names the https URL of its metadata document as its
/// client_id; Latchkey fetches it from the client's site (a real https server on loopback), checks
/// it, shows where it came from on the consent page, and keeps it for as long as HTTP caching and
/// the configured bounds allow. A document that breaks a rule, or a URL that may not be fetched, is
/// <c>invalid_client</c> with the reason, and nothing is stored.
/// </summary>
public abstract class ClientMetadataDocumentTests(LatchkeyServerFixture server) : IAsyncLifetime
{
    private const string RedirectUri = "http://127.0.0.1:9/callback";
    private ClientMetadataDocumentSite _site = null!;

    public async Task InitializeAsync() => _site = await ClientMetadataDocumentSite.StartAsync();

    public async Task DisposeAsync() => await _site.DisposeAsync();

    private static string NewPath() => $"/clients/{Guid.NewGuid():N}.json";

    private Dictionary<string, object?> Document(string path, string name = "Document client") => new()
    {
        ["client_id"] = _site.Url(path),
        ["client_name"] = name,
        ["client_uri"] = "https://client.example/",
        ["redirect_uris"] = new[] { RedirectUri },
        ["grant_types"] = new[] { "authorization_code", "refresh_token" },
        ["response_types"] = new[] { "code" },
        ["token_endpoint_auth_method"] = "none",
    };

    [Fact]
    public async Task A_client_named_by_its_document_signs_a_user_in_and_the_consent_page_names_the_documents_host()
    {
        var path = NewPath();
        _site.Serve(path, Document(path, "Research agent"), new Dictionary<string, string> { ["Cache-Control"] = "max-age=3600" });
        var app = new RegisteredApp(_site.Url(path), null, RedirectUri);
        var user = await TestAccounts.SignUpAsync(server);
        var (verifier, challenge) = NewPkce();

        var consent = await user.Session.GetAsync(AuthorizeUrl(app, "IDENTITY offline_access", challenge));
        var html = WebUtility.HtmlDecode(await consent.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, consent.StatusCode);
        Assert.Contains("Research agent", html);
        Assert.Contains("id=\"metadata-document\"", html);
        Assert.Contains("<strong class=\"metadata-host\">127.0.0.1</strong>", html);

        var form = HiddenInputs(html);
        form["decision"] = "approve";
        var outcome = Outcome(await user.Session.PostAsync("/auth/authorize", new FormUrlEncodedContent(form)));
        Assert.True(outcome.Query.ContainsKey("code"), $"{outcome.Response.StatusCode} {outcome.Redirect}");
        var tokens = await RedeemCodeAsync(server.CreateClient(), app, outcome.Query["code"], verifier);
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(server.CreateClient(), tokens.GetProperty("access_token").GetString()!)).StatusCode);
        var refreshed = await TokenAsync(server.CreateClient(), RefreshParameters(app, tokens.GetProperty("refresh_token").GetString()!));
        Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);

        // Kept as a public app with no owner; fetched once, however often the client is named.
        var stored = await server.WithDbAsync(db => db.OAuthApplications.AsNoTracking().SingleAsync(a => a.ClientId == app.ClientId));
        Assert.Null(stored.OwnerId);
        Assert.Equal("public", stored.ClientType);
        Assert.Equal("Research agent", stored.DisplayName);
        Assert.InRange(stored.MetadataDocumentExpiresAt!.Value, DateTimeOffset.UtcNow.AddMinutes(55), DateTimeOffset.UtcNow.AddMinutes(61));
        Assert.Equal(1, _site.Hits(path));

        using var discovery = JsonDocument.Parse(await server.CreateClient().GetStringAsync("/.well-known/oauth-authorization-server"));
        Assert.True(discovery.RootElement.GetProperty("client_id_metadata_document_supported").GetBoolean());
    }

    [Fact]
    public async Task The_document_decides_the_redirect_uris_exactly()
    {
        var path = NewPath();
        _site.Serve(path, Document(path));
        var app = new RegisteredApp(_site.Url(path), null, RedirectUri);
        var user = await TestAccounts.SignUpAsync(server);
        var (_, challenge) = NewPkce();

        var otherPath = await user.Session.GetAsync(AuthorizeUrl(app, "IDENTITY", challenge, redirectUri: "http://127.0.0.1:9/elsewhere"));
        // A loopback redirect of another port is another redirect: the document lists what the client uses.
        var otherPort = await user.Session.GetAsync(AuthorizeUrl(app, "IDENTITY", challenge, redirectUri: "http://127.0.0.1:10/callback"));

        foreach (var response in new[] { otherPath, otherPort })
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Null(response.Headers.Location);
            Assert.Contains("cannot be completed", await response.Content.ReadAsStringAsync());
        }
    }

    public static TheoryData<string, string> BrokenDocuments => new()
    {
        { "another client_id", "must be exactly the URL it was fetched from" },
        { "a client secret", "may not carry a client secret" },
        { "a confidential method", "token_endpoint_auth_method must be \"none\"" },
        { "no redirect URIs", "must list its redirect_uris" },
        { "a plain http redirect", "must use https, http on a loopback address" },
        { "a scope beyond self-registration", "may ask only for the scopes" },
        { "the client credentials grant", "is not available to a client identified by a metadata document" },
        { "a name hiding characters", "invisible or control character" },
        { "the platform's name", "looks like Latchkey's own" },
        { "a redirect", "answered with a redirect (HTTP 302)" },
        { "not found", "answered HTTP 404" },
        { "too large", "larger than 5120 bytes" },
        { "not JSON", "not valid JSON" },
        { "a JSON array", "not a JSON object" },
        { "a number for a name", "wrong type" },
    };

    [Theory]
    [MemberData(nameof(BrokenDocuments))]
    public async Task A_document_that_breaks_a_rule_is_invalid_client_with_the_reason_and_stores_nothing(string what, string reason)
    {
        var path = NewPath();
        var document = Document(path);
        switch (what)
        {
            case "another client_id": document["client_id"] = _site.Url("/clients/someone-else.json"); break;
            case "a client secret": document["client_secret"] = "s3cret"; break;
            case "a confidential method": document["token_endpoint_auth_method"] = "client_secret_basic"; break;
            case "no redirect URIs": document.Remove("redirect_uris"); break;
            case "a plain http redirect": document["redirect_uris"] = new[] { "http://client.example/callback" }; break;
            case "a scope beyond self-registration": document["scope"] = "IDENTITY EXECUTE_GRAPH"; break;
            case "the client credentials grant": document["grant_types"] = new[] { "client_credentials" }; break;
            case "a name hiding characters": document["client_name"] = "Good\u202Eclient"; break;
            case "the platform's name": document["client_name"] = "Latchkey"; break;
            case "a number for a name": document["client_name"] = 42; break;
        }
        switch (what)
        {
            case "a redirect": _site.ServeRaw(path, 302, "", new Dictionary<string, string> { ["Location"] = _site.Url("/clients/elsewhere.json") }); break;
            case "not found": break;
            case "too large": document["client_uri"] = "https://client.example/" + new string('a', 6000); _site.Serve(path, document); break;
            case "not JSON": _site.ServeRaw(path, 200, "client_name=nope", contentType: "text/plain"); break;
            case "a JSON array": _site.ServeRaw(path, 200, "[1, 2]"); break;
            default: _site.Serve(path, document); break;
        }
        var app = new RegisteredApp(_site.Url(path), null, RedirectUri);
        var (_, challenge) = NewPkce();

        var page = await server.CreateClient().GetAsync(AuthorizeUrl(app, "IDENTITY", challenge));
        var token = await TokenAsync(server.CreateClient(), CodeParameters(app, "code", "verifier"));

        var html = WebUtility.HtmlDecode(await page.Content.ReadAsStringAsync());
        Assert.True(page.StatusCode == HttpStatusCode.BadRequest, $"{what}: {page.StatusCode}");
        Assert.Null(page.Headers.Location);
        Assert.Contains("invalid_client", html);
        Assert.True(html.Contains(reason, StringComparison.Ordinal), $"{what}: {html}");
        Assert.True((int)token.StatusCode is 400 or 401, $"{what}: {token.StatusCode}");
        Assert.Equal("invalid_client", await AuthorizationCodeFlowTests.ErrorAsync(token));
        Assert.False(await server.WithDbAsync(db => db.OAuthApplications.AnyAsync(a => a.ClientId == app.ClientId)), what);
        // The refusal is remembered for a while: the token request did not fetch the document again.
        Assert.Equal(1, _site.Hits(path));
    }

    public static TheoryData<string, string> UnfetchableUrls => new()
    {
        { "http://127.0.0.1:{port}/clients/plain.json", "must use https" },
        { "https://127.0.0.1:{port}/", "must have a path" },
        { "https://127.0.0.1:{port}/clients/doc.json#part", "query or a fragment" },
        { "https://127.0.0.1:{port}/clients/doc.json?v=1", "query or a fragment" },
        { "https://127.0.0.1:{port}/clients/../doc.json", "'.' or '..' path segments" },
        { "https://127.0.0.1:{port}/clients/%2E%2E/doc.json", "'.' or '..' path segments" },
        { "https://user:pass@127.0.0.1:{port}/clients/doc.json", "credentials" },
    };

    [Theory]
    [MemberData(nameof(UnfetchableUrls))]
    public async Task A_url_that_cannot_name_a_document_is_refused_without_being_fetched(string template, string reason)
    {
        var url = template.Replace("{port}", _site.Address.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        var (_, challenge) = NewPkce();

        var page = await server.CreateClient().GetAsync(AuthorizeUrl(new RegisteredApp(url, null, RedirectUri), "IDENTITY", challenge));

        Assert.Equal(HttpStatusCode.BadRequest, page.StatusCode);
        var html = WebUtility.HtmlDecode(await page.Content.ReadAsStringAsync());
        Assert.True(html.Contains(reason, StringComparison.Ordinal), html);
        Assert.Equal(0, _site.Hits("/clients/doc.json") + _site.Hits("/clients/plain.json") + _site.Hits("/doc.json") + _site.Hits("/"));
    }

    [Fact]
    public async Task Operators_deny_and_allow_hosts_and_private_addresses_stay_out_of_reach_by_default()
    {
        var path = NewPath();
        _site.Serve(path, Document(path));
        var settings = new (Dictionary<string, string?> Settings, string Reason)[]
        {
            (new() { ["AuthorizationServer:ClientMetadataDocuments:DeniedHosts:0"] = "127.0.0.1" }, "are not accepted by this server"),
            (new() { ["AuthorizationServer:ClientMetadataDocuments:AllowedHosts:0"] = "*.client.example" }, "only from hosts its operator lists"),
            (new() { ["AuthorizationServer:ClientMetadataDocuments:AllowPrivateNetworks"] = "false" }, "which Latchkey does not call"),
            (new() { ["AuthorizationServer:ClientMetadataDocuments:Enabled"] = "false" }, "does not accept client metadata documents"),
        };
        foreach (var (nodeSettings, reason) in settings)
        {
            var (node, address) = await server.StartAnotherNodeAsync(nodeSettings);
            await using (node)
            {
                using var client = server.CreateClient(baseAddress: address);
                var (_, challenge) = NewPkce();
                var page = await client.GetAsync(AuthorizeUrl(new RegisteredApp(_site.Url(path), null, RedirectUri), "IDENTITY", challenge));
                var html = WebUtility.HtmlDecode(await page.Content.ReadAsStringAsync());
                Assert.Equal(HttpStatusCode.BadRequest, page.StatusCode);
                Assert.True(html.Contains(reason, StringComparison.Ordinal), html);
                if (nodeSettings.ContainsKey("AuthorizationServer:ClientMetadataDocuments:Enabled"))
                {
                    using var discovery = JsonDocument.Parse(await client.GetStringAsync("/.well-known/oauth-authorization-server"));
                    Assert.False(discovery.RootElement.GetProperty("client_id_metadata_document_supported").GetBoolean());
                }
                await node.StopAsync();
            }
        }
        Assert.Equal(0, _site.Hits(path));

        // An allowed host is accepted.
        var (allowing, allowingAddress) = await server.StartAnotherNodeAsync(new Dictionary<string, string?>
        {
            ["AuthorizationServer:ClientMetadataDocuments:AllowedHosts:0"] = "127.0.0.1",
        });
        await using (allowing)
        {
            var (_, challenge) = NewPkce();
            var page = await server.CreateClient(baseAddress: allowingAddress)
                .GetAsync(AuthorizeUrl(new RegisteredApp(_site.Url(path), null, RedirectUri), "IDENTITY", challenge));
            // Valid: the person is asked to sign in before the consent page.
            Assert.Equal(HttpStatusCode.Redirect, page.StatusCode);
            Assert.Contains("/account/sign-in", page.Headers.Location!.OriginalString);
            await allowing.StopAsync();
        }
        Assert.Equal(1, _site.Hits(path));
    }

    [Fact]
    public async Task A_document_is_kept_at_least_the_configured_minimum_and_fetched_again_once_it_expires()
    {
        var path = NewPath();
        var noCaching = new Dictionary<string, string> { ["Cache-Control"] = "no-store" };
        _site.Serve(path, Document(path, "First name"), noCaching);
        var app = new RegisteredApp(_site.Url(path), null, RedirectUri);
        var cookies = new CookieContainer();
        var user = await TestAccounts.SignUpAsync(server, cookies: cookies);

        // Here no-store is held to the five-minute minimum: a second request does not fetch again.
        Assert.Contains("First name", await ConsentPageAsync(user.Session, app));
        _site.Serve(path, Document(path, "Second name"), noCaching);
        Assert.Contains("First name", await ConsentPageAsync(user.Session, app));
        Assert.Equal(1, _site.Hits(path));

        // A node whose minimum is zero follows no-store: every request fetches the document, and a change shows at once.
        var (node, address) = await server.StartAnotherNodeAsync(new Dictionary<string, string?>
        {
            ["AuthorizationServer:ClientMetadataDocuments:MinCacheSeconds"] = "0",
        });
        await using (node)
        {
            using var session = server.CreateClient(cookies, address);
            await server.WithDbAsync(db => db.OAuthApplications.Where(a => a.ClientId == app.ClientId)
                .ExecuteUpdateAsync(a => a.SetProperty(x => x.MetadataDocumentExpiresAt, DateTimeOffset.UtcNow.AddSeconds(-1))));
            Assert.Contains("Second name", await ConsentPageAsync(session, app));
            _site.Serve(path, Document(path, "Third name"), noCaching);
            Assert.Contains("Third name", await ConsentPageAsync(session, app));
            await node.StopAsync();
        }
        Assert.Equal(3, _site.Hits(path));
        Assert.Equal(1, await server.WithDbAsync(db => db.OAuthApplications.CountAsync(a => a.ClientId == app.ClientId)));
    }

    private static async Task<string> ConsentPageAsync(HttpClient session, RegisteredApp app)
    {
        var (_, challenge) = NewPkce();
        var response = await session.GetAsync(AuthorizeUrl(app, "IDENTITY", challenge));
        var html = WebUtility.HtmlDecode(await response.Content.ReadAsStringAsync());
        Assert.True(response.StatusCode == HttpStatusCode.OK, html);
        return html;
    }
}

public sealed class ClientMetadataDocumentTestsOnSqlite(SqliteServer server) : ClientMetadataDocumentTests(server), IClassFixture<SqliteServer>;

public sealed class ClientMetadataDocumentTestsOnPostgres(PostgresServer server) : ClientMetadataDocumentTests(server), IClassFixture<PostgresServer>;

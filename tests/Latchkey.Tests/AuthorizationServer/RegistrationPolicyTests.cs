using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using static Latchkey.Tests.AuthorizationServer.AuthorizationCodeFlowTests;
using static Latchkey.Tests.Infrastructure.OAuthClient;

namespace Latchkey.Tests.AuthorizationServer;

/// <summary>
/// Who may register what: the small scope set of clients that register themselves, names that
/// imitate the platform, and characters that hide or reorder what people read on the consent page.
/// </summary>
public abstract class RegistrationPolicyTests(LatchkeyServerFixture server)
{
    private static readonly string[] DefaultAnonymousScopes = ["openid", "profile", "email", "IDENTITY", "USE_TOOLS"];

    // ---- Scopes of self-registered clients ----

    [Fact]
    public async Task A_client_registering_itself_without_a_scope_gets_exactly_the_default_set()
    {
        var (response, body) = await RegisterAsync(new { client_name = "Scope-less client", redirect_uris = new[] { "http://127.0.0.1/cb" }, token_endpoint_auth_method = "none" });

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var clientId = body.GetProperty("client_id").GetString()!;
        Assert.Equal(DefaultAnonymousScopes.Order(), body.GetProperty("scope").GetString()!.Split(' ').Order());
        Assert.Equal(DefaultAnonymousScopes.Order(), (await StoredScopesAsync(clientId)).Order());
    }

    [Fact]
    public async Task A_client_registering_itself_for_a_scope_outside_the_default_set_is_refused_with_the_allowed_set_named()
    {
        var before = await server.WithDbAsync(db => db.OAuthApplications.CountAsync());

        var (response, body) = await RegisterAsync(new
        {
            client_name = "Greedy client", redirect_uris = new[] { "http://127.0.0.1/cb" }, token_endpoint_auth_method = "none", scope = "IDENTITY EXECUTE_GRAPH",
        });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_client_metadata", body.GetProperty("error").GetString());
        var description = body.GetProperty("error_description").GetString()!;
        Assert.Contains("'EXECUTE_GRAPH'", description);
        Assert.Contains("openid profile email IDENTITY USE_TOOLS", description);
        Assert.Equal(before, await server.WithDbAsync(db => db.OAuthApplications.CountAsync()));
    }

    [Theory]
    [InlineData("USE_TOOLS offline_access")] // what the MCP C# SDK sends
    [InlineData("openid IDENTITY")]
    [InlineData("openid profile email IDENTITY USE_TOOLS offline_access")]
    public async Task A_client_registering_itself_may_ask_for_part_of_the_default_set(string scope)
    {
        var (response, body) = await RegisterAsync(new
        {
            client_name = "Modest client", redirect_uris = new[] { "http://127.0.0.1/cb" }, token_endpoint_auth_method = "client_secret_post", scope,
        });

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(scope.Split(' ').Order(), body.GetProperty("scope").GetString()!.Split(' ').Order());
    }

    [Fact]
    public async Task With_an_initial_access_token_a_client_still_gets_the_whole_catalog_or_any_scope_it_asks_for()
    {
        var (withoutScope, defaulted) = await RegisterAsync(new
        {
            client_name = "Operator-approved backend", redirect_uris = new[] { "https://backend.example.com/cb" }, token_endpoint_auth_method = "client_secret_basic",
        }, InitialAccessToken);
        var (withScope, asked) = await RegisterAsync(new
        {
            client_name = "Operator-approved agent runner", redirect_uris = new[] { "http://127.0.0.1/cb" }, token_endpoint_auth_method = "none",
            scope = "EXECUTE_GRAPH READ_SECURITY_EVENTS",
        }, InitialAccessToken);

        Assert.Equal(HttpStatusCode.Created, withoutScope.StatusCode);
        var catalog = defaulted.GetProperty("scope").GetString()!.Split(' ');
        Assert.Contains("EXECUTE_GRAPH", catalog);
        Assert.Contains("MANAGE_INTEGRATIONS", catalog);
        Assert.Contains("READ_SECURITY_EVENTS", catalog);
        Assert.Contains("openid", catalog);
        Assert.Equal(HttpStatusCode.Created, withScope.StatusCode);
        Assert.Equal("EXECUTE_GRAPH READ_SECURITY_EVENTS", asked.GetProperty("scope").GetString());
    }

    [Fact]
    public async Task A_configured_anonymous_scope_set_replaces_the_default()
    {
        var (node, address) = await server.StartAnotherNodeAsync(new Dictionary<string, string?>
        {
            ["AuthorizationServer:AnonymousRegistrationScopes:0"] = "openid",
            ["AuthorizationServer:AnonymousRegistrationScopes:1"] = "READ_STORE",
        });
        await using (node)
        {
            using var client = new HttpClient { BaseAddress = address };
            var registration = new { client_name = "Store browser", redirect_uris = new[] { "http://127.0.0.1/cb" }, token_endpoint_auth_method = "none" };

            var defaulted = await client.PostAsJsonAsync("/api/oauth/register", registration);
            var tooMuch = await client.PostAsJsonAsync("/api/oauth/register", new
            {
                registration.client_name, registration.redirect_uris, registration.token_endpoint_auth_method, scope = "USE_TOOLS",
            });

            Assert.Equal(HttpStatusCode.Created, defaulted.StatusCode);
            using var body = JsonDocument.Parse(await defaulted.Content.ReadAsStringAsync());
            Assert.Equal("openid READ_STORE", body.RootElement.GetProperty("scope").GetString());
            Assert.Equal(HttpStatusCode.BadRequest, tooMuch.StatusCode);
            Assert.Equal("invalid_client_metadata", await ErrorAsync(tooMuch));
            await node.StopAsync();
        }
    }

    // ---- Names that imitate the platform ----

    public static TheoryData<string> ImitatingNames => new()
    {
        "Latchkey",
        "Latchkey Admin",
        "LATCHKEY",
        "latchkey",
        "L\u0430tchkey",                 // Cyrillic а
        "L\u0410\u0422\u0421\u041D\u041A\u0415\u0423", // L and Cyrillic capitals: LАТСНКЕУ
        "LATCHK\u0395Y",                 // Greek capital epsilon
        "L4tchkey",
        "1atchkey",
        "Iatchkey",
        "|atchkey",
        "L@tchk3y",
        "Latch key",
        "L a t c h k e y",
        "L.A.T.C.H.K.E.Y",
        "\uFF2C\uFF41\uFF54\uFF43\uFF48\uFF4B\uFF45\uFF59", // fullwidth Ｌａｔｃｈｋｅｙ
        "\U0001D40B\U0001D41A\U0001D42D\U0001D41C\U0001D421\U0001D424\U0001D41E\U0001D432", // mathematical bold 𝐋𝐚𝐭𝐜𝐡𝐤𝐞𝐲
        "L\u00E4tchk\u00E9y",            // Lätchkéy
        "La\u0301tchkey",                // a + combining acute
        "Sign in with Latchkey",
        "MyLatchkeyHelper",
    };

    [Theory]
    [MemberData(nameof(ImitatingNames))]
    public async Task A_client_registering_itself_may_not_take_a_name_that_imitates_latchkey(string name)
    {
        var before = await server.WithDbAsync(db => db.OAuthApplications.CountAsync());

        var (response, body) = await RegisterAsync(new { client_name = name, redirect_uris = new[] { "http://127.0.0.1/cb" }, token_endpoint_auth_method = "none" });

        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{name}: {body}");
        Assert.Equal("invalid_client_metadata", body.GetProperty("error").GetString());
        Assert.Contains("Latchkey", body.GetProperty("error_description").GetString());
        Assert.Equal(before, await server.WithDbAsync(db => db.OAuthApplications.CountAsync()));
    }

    [Fact]
    public async Task An_initial_access_token_does_not_allow_a_name_that_imitates_latchkey()
    {
        var (response, body) = await RegisterAsync(new
        {
            client_name = "Latchkey Billing", redirect_uris = new[] { "https://billing.example.com/cb" }, token_endpoint_auth_method = "client_secret_basic",
        }, InitialAccessToken);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_client_metadata", body.GetProperty("error").GetString());
    }

    public static TheoryData<string> OrdinaryNames => new()
    {
        "Latch Tools",
        "Keychain Sync",
        "Key Latch",
        "Hatchkey Notes",
        "Latches & Keys",
        "Kitchen Keys",
        "Claude Desktop",
        "VS Code",
        "Cursor",
        "Agent under test",
        "Schlüsselbund",
        "Café Planner",
        "日程表",
        "Журнал",
        "Localhost Tools",
        "Acme Agents 2",
    };

    [Theory]
    [MemberData(nameof(OrdinaryNames))]
    public async Task Ordinary_names_are_accepted(string name)
    {
        var (response, body) = await RegisterAsync(new { client_name = name, redirect_uris = new[] { "http://127.0.0.1/cb" }, token_endpoint_auth_method = "none" });

        Assert.True(response.StatusCode == HttpStatusCode.Created, $"{name}: {body}");
        Assert.Equal(name, body.GetProperty("client_name").GetString());
    }

    [Fact]
    public async Task Names_that_imitate_the_issuer_or_public_host_are_refused()
    {
        var (node, address) = await server.StartAnotherNodeAsync(new Dictionary<string, string?>
        {
            ["AuthorizationServer:Issuer"] = "https://id.acme-corp.example/",
            ["Server:PublicUrl"] = "https://keys.northwind.example",
        });
        await using (node)
        {
            using var client = new HttpClient { BaseAddress = address };
            async Task<HttpStatusCode> RegisterNamedAsync(string name) => (await client.PostAsJsonAsync("/api/oauth/register", new
            {
                client_name = name, redirect_uris = new[] { "http://127.0.0.1/cb" }, token_endpoint_auth_method = "none",
            })).StatusCode;

            Assert.Equal(HttpStatusCode.BadRequest, await RegisterNamedAsync("id.acme-corp.example"));
            Assert.Equal(HttpStatusCode.BadRequest, await RegisterNamedAsync("ID ACME CORP EXAMPLE login"));
            Assert.Equal(HttpStatusCode.BadRequest, await RegisterNamedAsync("keys.n0rthwind.example"));
            Assert.Equal(HttpStatusCode.Created, await RegisterNamedAsync("Acme Corp helper"));
            await node.StopAsync();
        }
    }

    // ---- Hidden characters ----

    public static TheoryData<int> HiddenCharacters
    {
        get
        {
            var data = new TheoryData<int>();
            for (var c = 0; c < 0x20; c++)
            {
                data.Add(c);
            }
            foreach (var c in new[] { 0x7F, 0x85, 0xAD, 0x200B, 0x200D, 0x200E, 0x200F, 0x202A, 0x202E, 0x2066, 0x2069, 0xFEFF, 0x2028, 0x2029, 0xE000, 0x0378, 0xD800 })
            {
                data.Add(c);
            }
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(HiddenCharacters))]
    public async Task A_client_name_with_a_control_format_or_bidi_character_is_refused(int codePoint)
    {
        var before = await server.WithDbAsync(db => db.OAuthApplications.CountAsync());
        var body = $$"""{"client_name":"Harmless{{Escaped(codePoint)}}gpj.exe","redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}""";

        var response = await server.CreateClient().PostAsync("/api/oauth/register", new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_client_metadata", await ErrorAsync(response));
        Assert.Equal(before, await server.WithDbAsync(db => db.OAuthApplications.CountAsync()));
    }

    [Theory]
    [InlineData("client_uri")]
    [InlineData("logo_uri")]
    [InlineData("tos_uri")]
    [InlineData("policy_uri")]
    public async Task Other_displayed_metadata_with_a_bidi_override_is_refused(string field)
    {
        var body = $$"""{"client_name":"Plain","{{field}}":"https://example.com/\u202Efdp.exe","redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}""";

        var response = await server.CreateClient().PostAsync("/api/oauth/register", new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("invalid_client_metadata", error.RootElement.GetProperty("error").GetString());
        var description = error.RootElement.GetProperty("error_description").GetString()!;
        Assert.Contains(field, description);
        Assert.Contains("U+202E", description);
        Assert.DoesNotContain("\u202E", description, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("   ")]
    [InlineData("\u3164")]  // Hangul filler: a "letter" that shows nothing
    [InlineData("\u2800\u2800")] // Braille blank
    public async Task A_client_name_that_shows_nothing_is_refused(string name)
    {
        var (response, body) = await RegisterAsync(new { client_name = name, redirect_uris = new[] { "http://127.0.0.1/cb" }, token_endpoint_auth_method = "none" });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_client_metadata", body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task A_redirect_uri_with_a_bidi_override_is_refused()
    {
        var (response, body) = await RegisterAsync(new
        {
            client_name = "Plain", redirect_uris = new[] { "https://moc.\u202Eexample.com/cb" }, token_endpoint_auth_method = "none",
        });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_redirect_uri", body.GetProperty("error").GetString());
    }

    // ---- The same rules for apps registered by signed-in users ----

    [Theory]
    [InlineData("Latchkey")]
    [InlineData("L\u0430tchkey Admin")]
    [InlineData("L4TCHKEY sync")]
    public async Task A_user_may_not_register_an_app_whose_name_imitates_latchkey(string name)
    {
        var owner = await TestAccounts.SignUpAsync(server);

        var response = await owner.Session.PostAsJsonAsync("/api/oauth/apps", AppBody(name));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("Latchkey", await FieldErrorAsync(response, "name"));
        Assert.Equal(0, await server.WithDbAsync(db => db.OAuthApplications.CountAsync(a => a.DisplayName == name)));
    }

    [Fact]
    public async Task A_user_may_not_rename_an_app_to_imitate_latchkey()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner, name: "Week Planner");

        var response = await owner.Session.PatchAsJsonAsync($"/api/oauth/apps/{app.ClientId}", new { name = "Latchkey Week Planner" });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("Latchkey", await FieldErrorAsync(response, "name"));
        Assert.Equal("Week Planner", await server.WithDbAsync(db => db.OAuthApplications.Where(a => a.ClientId == app.ClientId).Select(a => a.DisplayName).SingleAsync()));
    }

    [Theory]
    [MemberData(nameof(OrdinaryNames))]
    public async Task A_user_may_register_an_app_with_an_ordinary_name(string name)
    {
        var owner = await TestAccounts.SignUpAsync(server);

        var response = await owner.Session.PostAsJsonAsync("/api/oauth/apps", AppBody(name));

        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
    }

    public static TheoryData<string, string, string> HiddenCharactersInApps => new()
    {
        { "name", "Harmless\u202Egpj.exe", "name" },
        { "name", "Zero\u200Bwidth", "name" },
        { "name", "Isolate\u2066d", "name" },
        { "name", "\uFEFFBOM", "name" },
        { "name", "Bell\u0007", "name" },
        { "name", "Tab\tname", "name" },
        { "description", "Looks fine\u202E", "description" },
        { "description", "Start of heading\u0001", "description" },
        { "homepage_url", "https://example.com/\u200B", "homepage_url" },
        { "redirect_uri", "https://example.com/\u202Ecb", "redirect_uris" },
    };

    [Theory]
    [MemberData(nameof(HiddenCharactersInApps))]
    public async Task A_user_may_not_register_an_app_with_hidden_characters_in_what_people_read(string field, string value, string errorField)
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var body = new Dictionary<string, object?>
        {
            ["name"] = field == "name" ? value : "Plain app",
            ["description"] = field == "description" ? value : null,
            ["homepage_url"] = field == "homepage_url" ? value : null,
            ["redirect_uris"] = new[] { field == "redirect_uri" ? value : RedirectUri },
            ["scopes"] = new[] { "IDENTITY" },
        };

        var response = await owner.Session.PostAsJsonAsync("/api/oauth/apps", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var message = await FieldErrorAsync(response, errorField);
        Assert.Contains("U+", message);
        Assert.Equal(0, await server.WithDbAsync(db => db.OAuthApplications.CountAsync(a => a.OwnerId != null && a.Owner!.Email == owner.Email)));
    }

    [Fact]
    public async Task A_description_may_have_line_breaks()
    {
        var owner = await TestAccounts.SignUpAsync(server);

        var response = await owner.Session.PostAsJsonAsync("/api/oauth/apps", new
        {
            name = "Two-line app", description = "Plans your week.\r\nReads your calendar.", redirect_uris = new[] { RedirectUri }, scopes = new[] { "IDENTITY" },
        });

        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
    }

    // ---- The operator's command line ----

    [Fact]
    public async Task The_operator_may_register_a_first_party_app_named_after_latchkey_and_its_owner_may_keep_that_name()
    {
        var owner = await TestAccounts.SignUpAsync(server);

        var run = await server.RunCliAsync(["apps", "create", "--owner", owner.Email, "--name", "Latchkey Console",
            "--redirect-uri", "https://console.example.com/cb", "--scope", "openid", "--scope", "IDENTITY", "--confidential"]);

        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Contains("Registered Latchkey Console.", run.Output);
        var clientId = await server.WithDbAsync(db => db.OAuthApplications.Where(a => a.DisplayName == "Latchkey Console" && a.Owner!.Email == owner.Email).Select(a => a.ClientId).SingleAsync());

        // Editing the app with its name unchanged is fine; a new name follows the rule.
        var kept = await owner.Session.PatchAsJsonAsync($"/api/oauth/apps/{clientId}", new { name = "Latchkey Console", description = "The operator's console." });
        Assert.True(kept.StatusCode == HttpStatusCode.OK, await kept.Content.ReadAsStringAsync());
        var renamed = await owner.Session.PatchAsJsonAsync($"/api/oauth/apps/{clientId}", new { name = "Latchkey Console 2" });
        Assert.Equal(HttpStatusCode.BadRequest, renamed.StatusCode);
    }

    // ---- Caller input in error messages ----

    [Fact]
    public async Task Errors_quote_only_the_start_of_a_long_input()
    {
        var longUri = "ftp://example.com/" + new string('a', 1500);
        var longScope = "S" + new string('X', 500);
        var owner = await TestAccounts.SignUpAsync(server);

        var (registration, registrationError) = await RegisterAsync(new { client_name = "Plain", redirect_uris = new[] { longUri }, token_endpoint_auth_method = "none" });
        var app = await owner.Session.PostAsJsonAsync("/api/oauth/apps", new { name = "Plain", redirect_uris = new[] { RedirectUri }, scopes = new[] { longScope } });

        Assert.Equal(HttpStatusCode.BadRequest, registration.StatusCode);
        var description = registrationError.GetProperty("error_description").GetString()!;
        Assert.DoesNotContain(longUri, description);
        Assert.Contains($"({longUri.Length} characters)", description);
        var scopeMessage = await FieldErrorAsync(app, "scopes");
        Assert.DoesNotContain(longScope, scopeMessage);
        Assert.Contains($"({longScope.Length} characters)", scopeMessage);
    }

    private const string InitialAccessToken = LatchkeyServerFixture.InitialAccessToken;

    private async Task<(HttpResponseMessage Response, JsonElement Body)> RegisterAsync(object metadata, string? initialAccessToken = null)
    {
        var client = server.CreateClient();
        if (initialAccessToken is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", initialAccessToken);
        }
        var response = await client.PostAsJsonAsync("/api/oauth/register", metadata);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return (response, body.RootElement.Clone());
    }

    private Task<List<string>> StoredScopesAsync(string clientId) => server.WithDbAsync(async db =>
    {
        var permissions = await db.OAuthApplications.Where(a => a.ClientId == clientId).Select(a => a.Permissions).SingleAsync();
        return JsonSerializer.Deserialize<string[]>(permissions!)!.Where(p => p.StartsWith("scp:", StringComparison.Ordinal)).Select(p => p[4..]).ToList();
    });

    private static object AppBody(string name) => new { name, redirect_uris = new[] { RedirectUri }, scopes = new[] { "IDENTITY" } };

    private static async Task<string> FieldErrorAsync(HttpResponseMessage response, string field)
    {
        var text = await response.Content.ReadAsStringAsync();
        using var problem = JsonDocument.Parse(text);
        var messages = default(JsonElement);
        Assert.True(problem.RootElement.TryGetProperty("errors", out var errors) && errors.TryGetProperty(field, out messages), text);
        return string.Join(" ", messages.EnumerateArray().Select(e => e.GetString()));
    }

    /// <summary>The code point as a JSON escape, so that a lone surrogate reaches the server as sent.</summary>
    private static string Escaped(int codePoint) => $"\\u{codePoint:X4}";
}

public sealed class RegistrationPolicyTestsOnSqlite(SqliteServer server) : RegistrationPolicyTests(server), IClassFixture<SqliteServer>;

public sealed class RegistrationPolicyTestsOnPostgres(PostgresServer server) : RegistrationPolicyTests(server), IClassFixture<PostgresServer>;

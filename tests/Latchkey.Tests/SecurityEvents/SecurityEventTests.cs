using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Latchkey.Features.Operations;
using Latchkey.Features.SecurityEvents;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using OpenIddict.Abstractions;
using static Latchkey.Tests.Infrastructure.OAuthClient;
using static Latchkey.Tests.Infrastructure.TestBroker;

namespace Latchkey.Tests.SecurityEvents;

/// <summary>The account's security log: recorded from the real flows, read and exported by its owner only.</summary>
public abstract class SecurityEventTests(LatchkeyServerFixture server) : IAsyncLifetime
{
    private const string UserAgent = "SecurityEventTests/1.0 (+https://example.com)";
    private TestOAuthProvider _provider = null!;

    public async Task InitializeAsync() => _provider = await TestOAuthProvider.StartAsync();

    public async Task DisposeAsync() => await _provider.DisposeAsync();

    [Fact]
    public async Task Sign_ins_failures_and_lockout_are_recorded_for_the_account_and_an_unknown_address_for_none()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var accountId = await AccountIdAsync(account);
        var browser = Browser();

        Assert.Equal(HttpStatusCode.Redirect, (await SignInAsync(browser, account.Email, account.Password)).StatusCode);
        for (var attempt = 0; attempt < 5; attempt++)
        {
            await SignInAsync(browser, account.Email, "hunter2-guess-" + attempt);
        }
        await FlushAsync();
        var countBefore = await server.WithDbAsync(db => db.SecurityEvents.CountAsync());
        await SignInAsync(browser, TestAccounts.NewEmail(), "whatever password");
        await FlushAsync();

        var events = await EventsAsync(accountId);
        var signIns = events.Where(e => e.Type == SecurityEventTypes.SignIn).ToList();
        Assert.Equal(["new account", "password"], signIns.Select(e => e.Detail).Order());
        var latest = signIns.Single(e => e.Detail == "password");
        Assert.Equal("127.0.0.1", latest.IpAddress);
        Assert.Equal(UserAgent, latest.UserAgent);
        Assert.Equal(4, events.Count(e => e.Type == SecurityEventTypes.SignInFailed && e.Detail == "wrong password"));
        Assert.Single(events, e => e.Type == SecurityEventTypes.SignInLockedOut);
        // An address without an account leaves no trace in anyone's log.
        Assert.Equal(countBefore, await server.WithDbAsync(db => db.SecurityEvents.CountAsync()));
        AssertNoSecrets(events, account.Password, "hunter2-guess-");
    }

    [Fact]
    public async Task Consent_granted_and_denied_are_recorded_with_the_app_and_the_grant()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner);
        var user = await TestAccounts.SignUpAsync(server);
        var userId = await AccountIdAsync(user);

        var (_, deniedChallenge) = NewPkce();
        var denied = await AuthorizeAsync(user.Session, AuthorizeUrl(app, "IDENTITY", deniedChallenge), decision: "deny");
        Assert.Equal("access_denied", denied.Query["error"]);
        var (code, _) = await GetCodeAsync(user, app, "IDENTITY READ_GRAPH");
        await FlushAsync();

        var events = await EventsAsync(userId);
        var deny = Assert.Single(events, e => e.Type == SecurityEventTypes.ConsentDenied);
        Assert.Equal(app.ClientId, deny.ClientId);
        Assert.Equal("scopes: IDENTITY", deny.Detail);
        var grant = Assert.Single(events, e => e.Type == SecurityEventTypes.ConsentGranted);
        Assert.Equal(app.ClientId, grant.ClientId);
        Assert.Equal("scopes: IDENTITY READ_GRAPH", grant.Detail);
        // The consent is the user's permanent authorization; the sign-in's tokens hang off an ad-hoc one of its own.
        var authorizationId = await server.WithDbAsync(db => db.OAuthAuthorizations.Where(a => a.Subject == userId && a.Type == OpenIddictConstants.AuthorizationTypes.Permanent).Select(a => a.Id).SingleAsync());
        Assert.Equal(authorizationId, grant.SubjectId);
        Assert.Empty(await EventsAsync(await AccountIdAsync(owner), SecurityEventTypes.ConsentGranted));
        AssertNoSecrets(events, code, app.ClientSecret!);
    }

    [Fact]
    public async Task Token_issue_refresh_revocation_and_refresh_token_reuse_are_recorded_without_the_tokens()
    {
        var issued = await IssueAsync(server);
        var userId = await AccountIdAsync(issued.User);
        var client = server.CreateClient();
        var firstRefresh = issued.RefreshToken;
        var rotated = await TokenAsync(client, RefreshParameters(issued.App, firstRefresh));
        var rotatedBody = JsonDocument.Parse(await rotated.Content.ReadAsStringAsync()).RootElement;
        var secondAccess = rotatedBody.GetProperty("access_token").GetString()!;
        var revoke = await client.PostAsync("/api/oauth/revoke", new FormUrlEncodedContent(ClientParameters(issued.App, secondAccess)));
        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        // Replaying the first refresh token outside OpenIddict's leeway revokes the grant's tokens.
        await server.WithDbAsync(db => db.OAuthTokens.Where(t => t.Type == OpenIddictConstants.TokenTypeIdentifiers.RefreshToken && t.Status == "redeemed")
            .ExecuteUpdateAsync(s => s.SetProperty(t => t.RedemptionDate, DateTime.UtcNow.AddMinutes(-5))));
        var replay = await TokenAsync(client, RefreshParameters(issued.App, firstRefresh));
        Assert.Equal(HttpStatusCode.BadRequest, replay.StatusCode);
        await FlushAsync();

        var events = await EventsAsync(userId);
        var tokenIds = await server.WithDbAsync(db => db.OAuthTokens.Where(t => t.Subject == userId && t.Type == OpenIddictConstants.TokenTypeIdentifiers.AccessToken)
            .OrderBy(t => t.CreationDate).ThenBy(t => t.Id).Select(t => t.Id).ToListAsync());
        var issuedEvents = events.Where(e => e.Type == SecurityEventTypes.TokenIssued).OrderBy(e => e.Id).ToList();
        Assert.Equal(2, issuedEvents.Count);
        Assert.All(issuedEvents, e => Assert.Equal(issued.App.ClientId, e.ClientId));
        Assert.Equal(tokenIds, issuedEvents.Select(e => e.SubjectId));
        Assert.StartsWith("grant_type=authorization_code refresh_token_id=", issuedEvents[0].Detail);
        Assert.StartsWith("grant_type=refresh_token refresh_token_id=", issuedEvents[1].Detail);

        var revoked = events.Where(e => e.Type == SecurityEventTypes.TokenRevoked).OrderBy(e => e.Id).ToList();
        Assert.Equal(2, revoked.Count);
        Assert.Equal(tokenIds[1], revoked[0].SubjectId);
        Assert.Equal("revoked by the app: access token", revoked[0].Detail);
        // The reuse ended the sign-in's chain: its ad-hoc authorization.
        var authorizationId = await server.WithDbAsync(db => db.OAuthAuthorizations.Where(a => a.Subject == userId && a.Type == OpenIddictConstants.AuthorizationTypes.AdHoc).Select(a => a.Id).SingleAsync());
        Assert.Equal(authorizationId, revoked[1].SubjectId);
        Assert.Equal(issued.App.ClientId, revoked[1].ClientId);
        Assert.Contains("refresh token", revoked[1].Detail);
        Assert.Contains("used twice", revoked[1].Detail);
        AssertNoSecrets(events, issued.AccessToken, firstRefresh, secondAccess, rotatedBody.GetProperty("refresh_token").GetString()!, issued.App.ClientSecret!);
    }

    [Fact]
    public async Task A_token_an_app_obtains_for_itself_is_recorded_in_its_owners_log()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner);

        var response = await ClientCredentialsAsync(server, app, "READ_GRAPH");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await FlushAsync();

        var issued = Assert.Single(await EventsAsync(await AccountIdAsync(owner), SecurityEventTypes.TokenIssued));
        Assert.Equal(app.ClientId, issued.ClientId);
        Assert.Equal("grant_type=client_credentials", issued.Detail);
        AssertNoSecrets([issued], JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("access_token").GetString()!, app.ClientSecret!);
    }

    [Fact]
    public async Task Revoking_an_apps_access_records_token_revoked_for_the_grant()
    {
        var issued = await IssueAsync(server);
        var userId = await AccountIdAsync(issued.User);

        Assert.Equal(HttpStatusCode.NoContent, (await issued.User.Session.DeleteAsync($"/api/oauth/authorizations/{issued.App.ClientId}")).StatusCode);
        await FlushAsync();

        var revoked = Assert.Single(await EventsAsync(userId, SecurityEventTypes.TokenRevoked));
        var authorizationId = await server.WithDbAsync(db => db.OAuthAuthorizations.Where(a => a.Subject == userId && a.Type == OpenIddictConstants.AuthorizationTypes.Permanent).Select(a => a.Id).SingleAsync());
        Assert.Equal(authorizationId, revoked.SubjectId);
        Assert.Equal(issued.App.ClientId, revoked.ClientId);
    }

    [Fact]
    public async Task Api_keys_created_and_revoked_on_the_api_and_the_command_line_are_recorded_by_id_only()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var accountId = await AccountIdAsync(account);
        var (key, keyId) = await TestAccounts.CreateKeyAsync(account, "IDENTITY", "READ_GRAPH");
        Assert.Equal(HttpStatusCode.NoContent, (await account.Session.DeleteAsync($"/api/keys/{keyId}")).StatusCode);
        await FlushAsync();
        // The command line never starts the host's writers; it writes what it queued itself.
        var cli = await server.RunCliAsync(["keys", "create", "--user", account.Email, "--name", "cli", "--scope", "IDENTITY"]);
        Assert.Equal(0, cli.ExitCode);
        var cliKey = cli.Output.Split('\n').Single(line => line.StartsWith("lk_ak_", StringComparison.Ordinal)).Trim();
        await FlushAsync();

        var events = await EventsAsync(accountId);
        var created = events.Where(e => e.Type == SecurityEventTypes.ApiKeyCreated).OrderBy(e => e.OccurredAt).ToList();
        Assert.Equal(2, created.Count);
        Assert.Equal(keyId, created[0].SubjectId);
        Assert.Equal("scopes: IDENTITY READ_GRAPH", created[0].Detail);
        Assert.StartsWith("key_", created[1].SubjectId);
        Assert.Null(created[1].IpAddress);
        Assert.Equal(keyId, Assert.Single(events, e => e.Type == SecurityEventTypes.ApiKeyRevoked).SubjectId);
        AssertNoSecrets(events, key, key[6..20], cliKey, cliKey[6..20]);
    }

    [Fact]
    public async Task Credential_create_read_refresh_failure_and_delete_are_recorded_without_provider_tokens()
    {
        var caller = await CallerAsync(server);
        var accountId = await AccountIdAsync(caller.Account);
        var credentialId = await ConnectedCredentialAsync(caller, _provider);
        var firstAccess = _provider.LastIssuedAccessToken!;
        await PostAsync(caller, $"/mcp/credentials/{credentialId}/access-token", new { });
        await PostAsync(caller, "/mcp/oauth/refresh-token", new { credential_id = credentialId });
        var refreshedAccess = _provider.LastIssuedAccessToken!;
        _provider.FailRefreshWithInvalidGrant = true;
        await ExpireSoonAsync(server, credentialId, seconds: 3600);
        var failed = await caller.Client.PostAsJsonAsync("/mcp/oauth/refresh-token", new { credential_id = credentialId });
        Assert.Equal(HttpStatusCode.Conflict, failed.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await caller.Client.DeleteAsync($"/mcp/credentials/{credentialId}")).StatusCode);
        await FlushAsync();

        var events = (await EventsAsync(accountId)).Where(e => e.SubjectId == credentialId).OrderBy(e => e.OccurredAt).ThenBy(e => e.Id).ToList();
        Assert.Equal(
            [SecurityEventTypes.CredentialCreated, SecurityEventTypes.CredentialRead, SecurityEventTypes.CredentialRefreshed,
             SecurityEventTypes.CredentialRefreshFailed, SecurityEventTypes.CredentialDeleted],
            events.Select(e => e.Type));
        Assert.Equal("InvalidGrant", events[3].Detail);
        Assert.All(events, e => Assert.Equal("127.0.0.1", e.IpAddress));
        AssertNoSecrets(await EventsAsync(accountId), firstAccess, refreshedAccess, "provider-refresh", TestOAuthProvider.ClientSecret, caller.ApiKey);
    }

    [Fact]
    public async Task The_owner_lists_events_newest_first_filtered_by_type_and_time_in_cursor_pages()
    {
        var (account, key) = await ReaderAsync();
        var accountId = await AccountIdAsync(account);
        var start = new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero);
        await SeedAsync(accountId, Enumerable.Range(0, 7).Select(i => (start.AddHours(i), i % 2 == 0 ? SecurityEventTypes.SignIn : SecurityEventTypes.TokenIssued)));

        var all = await ListAsync(key, "until=2021-01-01T00:00:00Z");
        var allEvents = all.GetProperty("events").EnumerateArray().ToList();
        Assert.Equal(7, allEvents.Count);
        Assert.Equal(start.AddHours(6), allEvents[0].GetProperty("occurred_at").GetDateTimeOffset());
        Assert.Equal(JsonValueKind.Null, all.GetProperty("next_cursor").ValueKind);
        Assert.Equal(["client_id", "detail", "id", "ip_address", "occurred_at", "subject_id", "type", "user_agent"],
            allEvents[0].EnumerateObject().Select(p => p.Name).Order());

        var signIns = await ListAsync(key, "until=2021-01-01T00:00:00Z&type=sign_in");
        Assert.Equal(4, signIns.GetProperty("events").GetArrayLength());
        var both = await ListAsync(key, "until=2021-01-01T00:00:00Z&type=sign_in,token_issued&type=api_key_created");
        Assert.Equal(7, both.GetProperty("events").GetArrayLength());
        // since is inclusive, until exclusive; an offset other than UTC means the same instant.
        var window = await ListAsync(key, "since=" + Uri.EscapeDataString("2020-01-01T03:00:00+02:00") + "&until=2020-01-01T03:00:00Z");
        Assert.Equal([start.AddHours(2), start.AddHours(1)], window.GetProperty("events").EnumerateArray().Select(e => e.GetProperty("occurred_at").GetDateTimeOffset()));

        var paged = new List<long>();
        string? cursor = null;
        var pages = 0;
        do
        {
            var page = await ListAsync(key, "until=2021-01-01T00:00:00Z&limit=3" + (cursor is null ? "" : "&cursor=" + cursor));
            paged.AddRange(page.GetProperty("events").EnumerateArray().Select(e => e.GetProperty("id").GetInt64()));
            cursor = page.GetProperty("next_cursor").GetString();
            pages++;
        }
        while (cursor is not null);
        Assert.Equal(3, pages);
        Assert.Equal(allEvents.Select(e => e.GetProperty("id").GetInt64()), paged);
    }

    [Fact]
    public async Task Export_streams_the_whole_history_within_the_filters_as_jsonl_or_csv_attachments()
    {
        var (account, key) = await ReaderAsync();
        var accountId = await AccountIdAsync(account);
        var start = new DateTimeOffset(2019, 1, 1, 0, 0, 0, TimeSpan.Zero);
        // More than one read batch, and a user agent a spreadsheet would run as a formula.
        await SeedAsync(accountId, Enumerable.Range(0, 1105).Select(i => (start.AddMinutes(i), SecurityEventTypes.CredentialRead)));
        await server.WithDbAsync(async db =>
        {
            db.SecurityEvents.Add(new SecurityEvent
            {
                AccountId = accountId, Type = SecurityEventTypes.SignInFailed, OccurredAt = start.AddDays(2),
                UserAgent = "=HYPERLINK(\"https://evil.example\",\"x\")", Detail = "a, \"quoted\" detail",
            });
            return await db.SaveChangesAsync();
        });

        var jsonl = await ExportAsync(key, "format=jsonl&until=2020-01-01T00:00:00Z");
        Assert.Equal("application/x-ndjson", jsonl.Content.Headers.ContentType!.MediaType);
        Assert.Equal("attachment", jsonl.Content.Headers.ContentDisposition!.DispositionType);
        Assert.EndsWith(".jsonl", jsonl.Content.Headers.ContentDisposition.FileName!.Trim('"'));
        var lines = (await jsonl.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(1106, lines.Length);
        var ids = lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetInt64()).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.Equal(SecurityEventTypes.SignInFailed, JsonDocument.Parse(lines[0]).RootElement.GetProperty("type").GetString());

        var csv = await ExportAsync(key, "format=csv&type=sign_in_failed&until=2020-01-01T00:00:00Z");
        Assert.Equal("text/csv", csv.Content.Headers.ContentType!.MediaType);
        Assert.EndsWith(".csv", csv.Content.Headers.ContentDisposition!.FileName!.Trim('"'));
        var rows = (await csv.Content.ReadAsStringAsync()).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("id,type,occurred_at,subject_id,client_id,ip_address,user_agent,detail", rows[0]);
        var row = Assert.Single(rows[1..]);
        Assert.Contains(",sign_in_failed,2019-01-03T00:00:00.0000000Z,,,,", row);
        Assert.EndsWith(",\"'=HYPERLINK(\"\"https://evil.example\"\",\"\"x\"\")\",\"a, \"\"quoted\"\" detail\"", row);
    }

    [Fact]
    public async Task An_account_sees_none_of_another_accounts_events()
    {
        var (alice, aliceKey) = await ReaderAsync();
        var (_, bobKey) = await ReaderAsync();
        var aliceId = await AccountIdAsync(alice);
        await SeedAsync(aliceId, [(new DateTimeOffset(2020, 6, 1, 0, 0, 0, TimeSpan.Zero), SecurityEventTypes.ApiKeyCreated)]);
        await FlushAsync();
        var aliceIds = (await EventsAsync(aliceId)).Select(e => e.Id).ToHashSet();

        var bobList = await ListAsync(bobKey, "limit=500");
        var bobExport = await (await ExportAsync(bobKey, "format=jsonl")).Content.ReadAsStringAsync();

        Assert.NotEmpty(bobList.GetProperty("events").EnumerateArray());
        Assert.DoesNotContain(bobList.GetProperty("events").EnumerateArray(), e => aliceIds.Contains(e.GetProperty("id").GetInt64()));
        Assert.DoesNotContain(bobExport.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => aliceIds.Contains(JsonDocument.Parse(l).RootElement.GetProperty("id").GetInt64()));
        Assert.Equal(aliceIds.Count, (await ListAsync(aliceKey, "limit=500")).GetProperty("events").GetArrayLength());
    }

    [Fact]
    public async Task Reading_the_log_needs_a_credential_with_the_read_security_events_scope()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var (identityKey, _) = await TestAccounts.CreateKeyAsync(account, "IDENTITY");

        var anonymous = await server.CreateClient().GetAsync("/external-api/v1/security-events");
        var withoutScope = await Get(identityKey, "/external-api/v1/security-events");
        var exportWithoutScope = await Get(identityKey, "/external-api/v1/security-events/export");
        // The browser session is for the profile page, not this API.
        var session = await account.Session.GetAsync("/external-api/v1/security-events");

        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, withoutScope.StatusCode);
        Assert.Contains("READ_SECURITY_EVENTS", withoutScope.Headers.WwwAuthenticate.ToString());
        Assert.Equal(HttpStatusCode.Forbidden, exportWithoutScope.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, session.StatusCode);
    }

    [Theory]
    [InlineData("type=password_stolen", "type")]
    [InlineData("limit=0", "limit")]
    [InlineData("limit=501", "limit")]
    [InlineData("cursor=not-a-cursor", "cursor")]
    [InlineData("cursor=MTIz", "cursor")]
    [InlineData("since=2021-01-02T00:00:00Z&until=2021-01-01T00:00:00Z", "until")]
    [InlineData("since=yesterday", null)]
    [InlineData("limit=many", null)]
    public async Task Bad_query_input_is_answered_with_problem_details(string query, string? field)
    {
        var (_, key) = await ReaderAsync();

        var response = await Get(key, "/external-api/v1/security-events?" + query);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
        if (field is not null)
        {
            var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.GetRawText());
        }
    }

    [Fact]
    public async Task An_unknown_export_format_is_answered_with_problem_details()
    {
        var (_, key) = await ReaderAsync();

        var response = await Get(key, "/external-api/v1/security-events/export?format=xml");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
    }

    [Fact]
    public async Task The_clean_up_removes_events_older_than_the_retention_and_keeps_the_rest()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var accountId = await AccountIdAsync(account);
        var now = DateTimeOffset.UtcNow;
        await SeedAsync(accountId, [(now.AddDays(-400), SecurityEventTypes.SignIn), (now.AddDays(-366), SecurityEventTypes.SignIn), (now.AddDays(-300), SecurityEventTypes.TokenIssued)]);

        await using (var scope = server.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<Cleanup>().RunAsync(CancellationToken.None);
        }

        var left = await EventsAsync(accountId);
        Assert.DoesNotContain(left, e => e.OccurredAt < now.AddDays(-365));
        Assert.Single(left, e => e.OccurredAt < now.AddDays(-299));
    }

    [Fact]
    public async Task The_profile_page_shows_recent_events_and_downloads_the_log()
    {
        var account = await TestAccounts.SignUpAsync(server);
        await TestAccounts.CreateKeyAsync(account, "IDENTITY");
        await FlushAsync();

        var page = await account.Session.GetStringAsync("/profile/security-events");
        var download = await account.Session.GetAsync("/profile/security-events/export?format=csv");
        var signedOut = await server.CreateClient().GetAsync("/profile/security-events/export?format=csv");

        Assert.Contains("Signed in", page);
        Assert.Contains("API key created", page);
        Assert.Contains("/profile/security-events/export?format=csv", page, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(HttpStatusCode.OK, download.StatusCode);
        Assert.Equal("attachment", download.Content.Headers.ContentDisposition!.DispositionType);
        var rows = (await download.Content.ReadAsStringAsync()).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, rows.Length);
        Assert.Contains(rows, r => r.Contains(",api_key_created,"));
        Assert.Equal(HttpStatusCode.Redirect, signedOut.StatusCode);
    }

    [Fact]
    public async Task The_openapi_document_describes_the_security_event_endpoints()
    {
        using var document = JsonDocument.Parse(await server.CreateClient().GetStringAsync("/openapi/v1.json"));
        var paths = document.RootElement.GetProperty("paths");

        var list = paths.GetProperty("/external-api/v1/security-events").GetProperty("get");
        var export = paths.GetProperty("/external-api/v1/security-events/export").GetProperty("get");
        Assert.Contains("security events", list.GetProperty("summary").GetString());
        Assert.Contains("security history", export.GetProperty("summary").GetString());
        Assert.All(list.GetProperty("security").EnumerateArray().SelectMany(r => r.EnumerateObject()),
            s => Assert.Equal("READ_SECURITY_EVENTS", s.Value[0].GetString()));
        Assert.True(export.GetProperty("responses").GetProperty("200").GetProperty("content").TryGetProperty("text/csv", out _));
    }

    private HttpClient Browser()
    {
        var client = server.CreateClient();
        client.DefaultRequestHeaders.UserAgent.ParseAdd(UserAgent);
        return client;
    }

    private static Task<HttpResponseMessage> SignInAsync(HttpClient browser, string email, string password) =>
        Infrastructure.Browser.SubmitFormAsync(browser, "/account/sign-in", new Dictionary<string, string>
        {
            ["Input.Email"] = email,
            ["Input.Password"] = password,
        });

    private async Task<(TestAccount Account, string Key)> ReaderAsync()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var (key, _) = await TestAccounts.CreateKeyAsync(account, "READ_SECURITY_EVENTS");
        return (account, key);
    }

    private Task<HttpResponseMessage> Get(string key, string path) =>
        server.CreateClient().SendAsync(new HttpRequestMessage(HttpMethod.Get, path) { Headers = { { "X-API-Key", key } } });

    private async Task<JsonElement> ListAsync(string key, string query)
    {
        var response = await Get(key, "/external-api/v1/security-events?" + query);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    private async Task<HttpResponseMessage> ExportAsync(string key, string query)
    {
        var response = await Get(key, "/external-api/v1/security-events/export?" + query);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        return response;
    }

    [Fact]
    public async Task Queued_rows_are_written_in_bulk_exactly_as_recorded()
    {
        // More rows than one INSERT statement takes, with nulls, text that needs no escaping in SQL
        // and instants with sub-second parts (in UTC, as the log records them: PostgreSQL takes no other offset).
        var accountId = "bulk_" + Guid.NewGuid().ToString("N");
        var start = new DateTimeOffset(2026, 3, 4, 5, 6, 7, 123, TimeSpan.Zero).AddTicks(4567);
        var recorded = Enumerable.Range(0, 450).Select(i => new SecurityEvent
        {
            AccountId = accountId,
            OccurredAt = start.AddMinutes(i),
            Type = SecurityEventTypes.SignIn,
            SubjectId = i % 3 == 0 ? null : $"subject '{i}'; --",
            ClientId = i % 5 == 0 ? null : "client " + i,
            IpAddress = "192.0.2." + (i % 250),
            UserAgent = i % 2 == 0 ? null : "agent \"quoted\" " + i,
            Detail = "detail " + i,
        }).ToList();
        var log = server.Services.GetRequiredService<SecurityEventLog>();
        foreach (var item in recorded)
        {
            log.Record(item);
        }
        await FlushAsync();

        var stored = await server.WithDbAsync(db => db.SecurityEvents.AsNoTracking().Where(e => e.AccountId == accountId).ToListAsync());
        Assert.Equal(recorded.Count, stored.Count);
        Assert.Equal(stored.Count, stored.Select(e => e.Id).Distinct().Count());
        foreach (var (want, got) in recorded.OrderBy(e => e.Detail, StringComparer.Ordinal).Zip(stored.OrderBy(e => e.Detail, StringComparer.Ordinal)))
        {
            // SQLite keeps instants as EF Core's binary DateTimeOffset encoding, to a fraction of a millisecond.
            Assert.Equal(want.OccurredAt.UtcTicks / TimeSpan.TicksPerMillisecond, got.OccurredAt.UtcTicks / TimeSpan.TicksPerMillisecond);
            Assert.Equal((want.Type, want.SubjectId, want.ClientId, want.IpAddress, want.UserAgent, want.Detail),
                (got.Type, got.SubjectId, got.ClientId, got.IpAddress, got.UserAgent, got.Detail));
        }
    }

    private Task FlushAsync() => server.Services.GetRequiredService<SecurityEventLog>().FlushAsync();

    private Task<string> AccountIdAsync(TestAccount account) =>
        server.WithDbAsync(db => db.Users.Where(u => u.Email == account.Email).Select(u => u.Id).SingleAsync());

    private Task<List<SecurityEvent>> EventsAsync(string accountId, string? type = null) =>
        server.WithDbAsync(db => db.SecurityEvents.AsNoTracking().Where(e => e.AccountId == accountId && (type == null || e.Type == type)).ToListAsync());

    private Task<int> SeedAsync(string accountId, IEnumerable<(DateTimeOffset At, string Type)> events) =>
        server.WithDbAsync(db =>
        {
            db.SecurityEvents.AddRange(events.Select(e => new SecurityEvent { AccountId = accountId, OccurredAt = e.At, Type = e.Type, SubjectId = "seeded" }));
            return db.SaveChangesAsync();
        });

    /// <summary>No field of any event holds any of the secrets.</summary>
    private static void AssertNoSecrets(IEnumerable<SecurityEvent> events, params string[] secrets)
    {
        var text = string.Join('\n', events.Select(e => string.Join('|', e.AccountId, e.Type, e.SubjectId, e.ClientId, e.IpAddress, e.UserAgent, e.Detail)));
        Assert.NotEmpty(text);
        foreach (var secret in secrets)
        {
            Assert.DoesNotContain(secret, text);
        }
    }
}

public sealed class SecurityEventTestsOnSqlite(SqliteServer server) : SecurityEventTests(server), IClassFixture<SqliteServer>;

public sealed class SecurityEventTestsOnPostgres(PostgresServer server) : SecurityEventTests(server), IClassFixture<PostgresServer>;

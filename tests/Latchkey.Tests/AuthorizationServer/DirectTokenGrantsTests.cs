using System.Net;
using System.Text.Json;
using Latchkey.Features.AuthorizationServer.Tokens;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static Latchkey.Tests.Infrastructure.OAuthClient;
using static Latchkey.Tests.AuthorizationServer.AuthorizationCodeFlowTests;
using Statuses = OpenIddict.Abstractions.OpenIddictConstants.Statuses;

namespace Latchkey.Tests.AuthorizationServer;

/// <summary>
/// The client-credentials and refresh grants answered by Latchkey's own handler give the rows and
/// the answer OpenIddict gives for the same request (sent as JSON, which the direct handler leaves
/// to OpenIddict), and each kind reads the other's tokens.
/// </summary>
public abstract class DirectTokenGrantsTests(LatchkeyServerFixture server)
{
    private long Answered => server.Services.GetRequiredService<DirectTokenGrants>().Answered;

    [Fact]
    public async Task Client_credentials_are_answered_directly_with_the_row_and_answer_of_OpenIddict()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner);
        var parameters = new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["scope"] = "IDENTITY READ_GRAPH", ["client_id"] = app.ClientId, ["client_secret"] = app.ClientSecret!,
        };
        await ClientCredentialsAsync(server, app, "IDENTITY"); // the app is in this node's cache from here on

        var before = Answered;
        var direct = await OkAsync(await TokenAsync(server.CreateClient(), parameters));
        Assert.Equal(before + 1, Answered);
        var general = await OkAsync(await TokenAsync(server.CreateClient(), parameters, json: true));
        Assert.Equal(before + 1, Answered);

        AssertSameAnswer(general, direct);
        await AssertSameRowAsync(general.GetProperty("access_token").GetString()!, direct.GetProperty("access_token").GetString()!);
        var introspectedGeneral = await IntrospectAsync(server.CreateClient(), app, general.GetProperty("access_token").GetString()!);
        var introspectedDirect = await IntrospectAsync(server.CreateClient(), app, direct.GetProperty("access_token").GetString()!);
        Assert.True(introspectedDirect.GetProperty("active").GetBoolean());
        AssertSameAnswer(introspectedGeneral, introspectedDirect, "iat", "nbf", "exp", "jti");
    }

    [Fact]
    public async Task Refresh_is_answered_directly_with_the_rows_and_answer_of_OpenIddict_and_each_reads_the_others_tokens()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner);
        var user = await TestAccounts.SignUpAsync(server);
        var client = server.CreateClient();
        var first = await RedeemAsync(user, app);
        var second = await RedeemAsync(user, app);

        var before = Answered;
        var direct = await OkAsync(await TokenAsync(client, RefreshParameters(app, Refresh(first))));
        Assert.Equal(before + 1, Answered);
        var general = await OkAsync(await TokenAsync(client, RefreshParameters(app, Refresh(second)), json: true));
        Assert.Equal(before + 1, Answered);

        AssertSameAnswer(general, direct);
        await AssertSameRowAsync(general.GetProperty("access_token").GetString()!, direct.GetProperty("access_token").GetString()!);
        await AssertSameRowAsync(Refresh(general), Refresh(direct));
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(client, direct.GetProperty("access_token").GetString()!)).StatusCode);
        foreach (var redeemed in new[] { Refresh(first), Refresh(second) })
        {
            var status = await server.WithDbAsync(db => db.OAuthTokens.Where(t => t.ReferenceId == TokenFormats.StoredReferenceId(redeemed)).Select(t => t.Status).SingleAsync());
            Assert.Equal(Statuses.Redeemed, status);
        }

        // OpenIddict refreshes a directly issued token, and the direct handler one OpenIddict issued.
        var crossedGeneral = await OkAsync(await TokenAsync(client, RefreshParameters(app, Refresh(direct)), json: true));
        Assert.Equal(before + 1, Answered);
        await OkAsync(await TokenAsync(client, RefreshParameters(app, Refresh(general))));
        Assert.Equal(before + 2, Answered);
        await OkAsync(await TokenAsync(client, RefreshParameters(app, Refresh(crossedGeneral))));
        Assert.Equal(before + 3, Answered);
    }

    [Fact]
    public async Task Authorization_codes_are_redeemed_directly_with_the_rows_and_answer_of_OpenIddict()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner);
        var user = await TestAccounts.SignUpAsync(server);
        var client = server.CreateClient();
        await ClientCredentialsAsync(server, app, "IDENTITY");
        var (firstCode, firstVerifier) = await GetCodeAsync(user, app, "IDENTITY READ_GRAPH");
        var (secondCode, secondVerifier) = await GetCodeAsync(user, app, "IDENTITY READ_GRAPH");

        var before = Answered;
        var direct = await OkAsync(await TokenAsync(client, CodeParameters(app, firstCode, firstVerifier)));
        Assert.Equal(before + 1, Answered);
        var general = await OkAsync(await TokenAsync(client, CodeParameters(app, secondCode, secondVerifier), json: true));
        Assert.Equal(before + 1, Answered);

        AssertSameAnswer(general, direct);
        await AssertSameRowAsync(general.GetProperty("access_token").GetString()!, direct.GetProperty("access_token").GetString()!);
        await AssertSameRowAsync(Refresh(general), Refresh(direct));
        Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(client, direct.GetProperty("access_token").GetString()!)).StatusCode);
        await OkAsync(await TokenAsync(client, RefreshParameters(app, Refresh(direct))));
        Assert.Equal(before + 2, Answered);

        // A wrong verifier, a wrong redirect URI and a code used again are OpenIddict's to refuse; the reuse ends the chain.
        var (thirdCode, _) = await GetCodeAsync(user, app);
        Assert.Equal("invalid_grant", await ErrorAsync(await TokenAsync(client, CodeParameters(app, thirdCode, NewPkce().Verifier))));
        var (fourthCode, fourthVerifier) = await GetCodeAsync(user, app);
        var wrongRedirect = CodeParameters(app, fourthCode, fourthVerifier);
        wrongRedirect["redirect_uri"] = "https://app.example.com/elsewhere";
        Assert.Equal("invalid_grant", await ErrorAsync(await TokenAsync(client, wrongRedirect)));
        Assert.Equal("invalid_grant", await ErrorAsync(await TokenAsync(client, CodeParameters(app, firstCode, firstVerifier))));
        Assert.Equal(HttpStatusCode.Unauthorized, (await CallMeAsync(client, direct.GetProperty("access_token").GetString()!)).StatusCode);
        Assert.Equal(before + 2, Answered);
    }

    [Fact]
    public async Task What_the_direct_handler_does_not_plainly_grant_is_left_to_OpenIddict()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner);
        var user = await TestAccounts.SignUpAsync(server);
        var client = server.CreateClient();
        await ClientCredentialsAsync(server, app, "IDENTITY");
        var before = Answered;

        // A narrowed scope, an unknown scope, a wrong secret, a malformed or unknown refresh token, a repeated parameter.
        var issued = await RedeemAsync(user, app);
        await OkAsync(await TokenAsync(client, RefreshParameters(app, Refresh(issued), scope: "IDENTITY")));
        Assert.Equal("invalid_scope", await ErrorAsync(await ClientCredentialsAsync(server, app, "IDENTITY NOT_A_SCOPE")));
        Assert.Equal("invalid_client", await ErrorAsync(await ClientCredentialsAsync(server, app with { ClientSecret = app.ClientSecret![..^2] + "xx" }, "IDENTITY")));
        Assert.Equal("invalid_grant", await ErrorAsync(await TokenAsync(client, RefreshParameters(app, "lk_rt_" + new string('a', 49)))));
        var repeated = new FormUrlEncodedContent([
            new("grant_type", "client_credentials"), new("scope", "IDENTITY"), new("scope", "IDENTITY"),
            new("client_id", app.ClientId), new("client_secret", app.ClientSecret!)]);
        Assert.Equal("invalid_request", await ErrorAsync(await client.PostAsync("/api/oauth/token", repeated)));

        // A locked account's refresh token: the general path refuses it.
        var locked = await RedeemAsync(user, app);
        await server.WithDbAsync(db => db.Users.Where(u => u.Email == user.Email)
            .ExecuteUpdateAsync(set => set.SetProperty(u => u.LockoutEnd, DateTimeOffset.UtcNow.AddHours(1)).SetProperty(u => u.LockoutEnabled, true)));
        Assert.Equal("invalid_grant", await ErrorAsync(await TokenAsync(client, RefreshParameters(app, Refresh(locked)))));
        Assert.Equal(before, Answered);

        // A code of an account locked after it was issued: the user is read with the code (one
        // statement), and the general path refuses it.
        var other = await TestAccounts.SignUpAsync(server);
        var (code, verifier) = await GetCodeAsync(other, app);
        await server.WithDbAsync(db => db.Users.Where(u => u.Email == other.Email)
            .ExecuteUpdateAsync(set => set.SetProperty(u => u.LockoutEnd, DateTimeOffset.UtcNow.AddHours(1)).SetProperty(u => u.LockoutEnabled, true)));
        Assert.Equal("invalid_grant", await ErrorAsync(await TokenAsync(client, CodeParameters(app, code, verifier))));
        Assert.Equal(before, Answered);
    }

    [Fact]
    public async Task A_refresh_token_sent_many_times_at_once_is_redeemed_once_by_the_direct_handler()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner);
        var user = await TestAccounts.SignUpAsync(server);
        var refresh = Refresh(await RedeemAsync(user, app));
        var before = Answered;

        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => TokenAsync(server.CreateClient(), RefreshParameters(app, refresh))));

        // One request redeemed it here; the others found it redeemed and went to OpenIddict, which
        // allows a retry within its short leeway or refuses it.
        Assert.Equal(before + 1, Answered);
        Assert.Contains(answers, answer => answer.StatusCode == HttpStatusCode.OK);
        foreach (var answer in answers.Where(answer => answer.StatusCode != HttpStatusCode.OK))
        {
            Assert.Equal("invalid_grant", await ErrorAsync(answer));
        }
    }

    [Fact]
    public async Task Every_token_answered_is_in_the_database_when_its_answer_arrives()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner);
        await ClientCredentialsAsync(server, app, "IDENTITY");
        var before = Answered;

        var stored = await Task.WhenAll(Enumerable.Range(0, 40).Select(async _ =>
        {
            var token = (await OkAsync(await ClientCredentialsAsync(server, app, "IDENTITY"))).GetProperty("access_token").GetString()!;
            return await server.WithDbAsync(db => db.OAuthTokens.AnyAsync(t => t.ReferenceId == TokenFormats.StoredReferenceId(token)));
        }));

        Assert.All(stored, Assert.True);
        Assert.Equal(before + 40, Answered);
    }

    private static string Refresh(JsonElement answer) => answer.GetProperty("refresh_token").GetString()!;

    /// <summary>A code redeemed by OpenIddict (sent as JSON), so that only what a test does after counts as direct.</summary>
    private async Task<JsonElement> RedeemAsync(TestAccount user, RegisteredApp app)
    {
        var (code, verifier) = await GetCodeAsync(user, app);
        return await RedeemCodeAsync(server.CreateClient(), app, code, verifier, json: true);
    }

    private static async Task<JsonElement> OkAsync(HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    /// <summary>The same fields with the same values, but for the tokens themselves and instants (expires_in within a second).</summary>
    private static void AssertSameAnswer(JsonElement expected, JsonElement actual, params string[] instants)
    {
        var skipped = new HashSet<string>(["access_token", "refresh_token", "access_token_expires_at", "refresh_token_expires_at", .. instants]);
        Assert.Equal(expected.EnumerateObject().Select(p => p.Name).Order(), actual.EnumerateObject().Select(p => p.Name).Order());
        foreach (var field in expected.EnumerateObject().Where(p => !skipped.Contains(p.Name)))
        {
            if (field.Name == "expires_in")
            {
                Assert.InRange(actual.GetProperty("expires_in").GetInt64(), field.Value.GetInt64() - 1, field.Value.GetInt64() + 1);
                continue;
            }
            Assert.True(JsonElement.DeepEquals(field.Value, actual.GetProperty(field.Name)), $"{field.Name}: {field.Value} and {actual.GetProperty(field.Name)}");
        }
    }

    private async Task AssertSameRowAsync(string expectedToken, string actualToken)
    {
        var expected = await RowAsync(expectedToken);
        var actual = await RowAsync(actualToken);
        Assert.Equal(expected with { Lifetime = actual.Lifetime }, actual);
        Assert.InRange(actual.Lifetime - expected.Lifetime, TimeSpan.FromSeconds(-1), TimeSpan.FromSeconds(1));
    }

    private async Task<StoredRow> RowAsync(string token)
    {
        var row = await server.WithDbAsync(db => db.OAuthTokens
            .Where(t => t.ReferenceId == TokenFormats.StoredReferenceId(token))
            .Select(t => new { t.Type, t.Status, t.Subject, t.Properties, t.Payload, t.Application!.ClientId, HasAuthorization = t.Authorization != null, t.CreationDate, t.ExpirationDate })
            .SingleAsync());
        return new StoredRow(row.Type, row.Status, row.Subject, row.Properties, row.Payload, row.ClientId, row.HasAuthorization,
            row.ExpirationDate!.Value - row.CreationDate!.Value);
    }

    private sealed record StoredRow(string? Type, string? Status, string? Subject, string? Properties, string? Payload, string? ClientId,
        bool HasAuthorization, TimeSpan Lifetime);
}

public sealed class DirectTokenGrantsTestsOnSqlite(SqliteServer server) : DirectTokenGrantsTests(server), IClassFixture<SqliteServer>;

public sealed class DirectTokenGrantsTestsOnPostgres(PostgresServer server) : DirectTokenGrantsTests(server), IClassFixture<PostgresServer>;

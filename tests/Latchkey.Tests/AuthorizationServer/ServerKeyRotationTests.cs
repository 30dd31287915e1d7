using System.Net;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using static Latchkey.Tests.Infrastructure.OAuthClient;

namespace Latchkey.Tests.AuthorizationServer;

public abstract class ServerKeyRotationTests(LatchkeyServerFixture server)
{
    [Fact]
    public async Task A_node_has_read_its_keys_when_it_starts_before_any_request()
    {
        var (node, _) = await server.StartAnotherNodeAsync();
        await using (node)
        {
            Assert.True(node.Services.GetRequiredService<Latchkey.Features.AuthorizationServer.Keys.ServerKeySet>().IsLoaded);
            await node.StopAsync();
        }
    }

    [Fact]
    public async Task After_rotation_new_nodes_use_the_new_keys_and_tokens_from_before_stay_valid()
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner);
        var user = await TestAccounts.SignUpAsync(server);
        var (code, verifier) = await GetCodeAsync(user, app, "openid IDENTITY");
        var before = await RedeemCodeAsync(server.CreateClient(), app, code, verifier);

        var rotate = await server.RunCliAsync(["server-keys", "rotate"]);
        Assert.Equal(0, rotate.ExitCode);
        Assert.Contains("signing-0002", rotate.Output);
        Assert.Contains("hmac-0002", rotate.Output);
        Assert.Contains("Running servers sign and encrypt with them from now on", rotate.Output);

        // The running server takes the new keys up without a restart: the command announces them
        // (through the cluster link on PostgreSQL, the change feed beside the file on SQLite).
        using (var running = server.CreateClient())
        {
            await Eventually.TrueAsync(async () => (await running.GetStringAsync("/.well-known/jwks")).Contains("signing-0002", StringComparison.Ordinal),
                TimeSpan.FromSeconds(10), "the running server publishes signing-0002");
        }

        var (node, address) = await server.StartAnotherNodeAsync();
        await using (node)
        {
            using var client = new HttpClient { BaseAddress = address };
            using var jwks = JsonDocument.Parse(await client.GetStringAsync("/.well-known/jwks"));
            var kids = jwks.RootElement.GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("kid").GetString()).ToList();
            Assert.Equal(["signing-0002", "signing-0001"], kids);

            // The access and refresh tokens issued before the rotation still work on the new node.
            Assert.Equal(HttpStatusCode.OK, (await CallMeAsync(client, before.GetProperty("access_token").GetString()!)).StatusCode);
            Assert.True((await IntrospectAsync(client, app, before.GetProperty("access_token").GetString()!)).GetProperty("active").GetBoolean());
            var refreshed = await TokenAsync(client, RefreshParameters(app, before.GetProperty("refresh_token").GetString()!));
            Assert.True(refreshed.StatusCode == HttpStatusCode.OK, await refreshed.Content.ReadAsStringAsync());

            // New identity tokens are signed with the new key.
            using var body = JsonDocument.Parse(await refreshed.Content.ReadAsStringAsync());
            var idToken = body.RootElement.GetProperty("id_token").GetString()!;
            var header = JsonDocument.Parse(Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Decode(idToken.Split('.')[0]));
            Assert.Equal("signing-0002", header.RootElement.GetProperty("kid").GetString());
            await node.StopAsync();
        }
    }
}

public sealed class ServerKeyRotationTestsOnSqlite(SqliteServer server) : ServerKeyRotationTests(server), IClassFixture<SqliteServer>;

public sealed class ServerKeyRotationTestsOnPostgres(PostgresServer server) : ServerKeyRotationTests(server), IClassFixture<PostgresServer>;

using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;

namespace Latchkey.Tests.AuthorizationServer;

/// <summary>
/// Dynamic client registration management (RFC 7592): a client that registered itself reads,
/// changes (narrowing, never widening) and deletes its registration with the registration access
/// token it was given once; without that token it learns nothing.
/// </summary>
public abstract class RegistrationManagementTests(LatchkeyServerFixture server)
{
    [Fact]
    public async Task A_client_reads_changes_and_deletes_its_registration_with_its_registration_access_token()
    {
        var (metadata, token) = await RegisterAsync();
        var clientId = metadata.GetProperty("client_id").GetString()!;
        var uri = metadata.GetProperty("registration_client_uri").GetString()!;
        Assert.Equal(new Uri(server.BaseAddress, $"/api/oauth/register/{clientId}").AbsoluteUri, uri);
        Assert.StartsWith("lk_reg_", token);

        var read = await SendAsync(HttpMethod.Get, uri, token);
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        var current = await JsonAsync(read);
        Assert.Equal("Managed client", current.GetProperty("client_name").GetString());
        Assert.Equal("IDENTITY USE_TOOLS", current.GetProperty("scope").GetString());
        Assert.False(current.TryGetProperty("registration_access_token", out _));
        Assert.False(current.TryGetProperty("client_secret", out _));

        var changed = await SendAsync(HttpMethod.Put, uri, token, new
        {
            client_id = clientId,
            client_name = "Renamed client",
            redirect_uris = new[] { "http://127.0.0.1:9100/cb", "http://127.0.0.1:9200/cb" },
            token_endpoint_auth_method = "none",
            scope = "IDENTITY",
        });
        Assert.Equal(HttpStatusCode.OK, changed.StatusCode);
        var after = await JsonAsync(changed);
        Assert.Equal("Renamed client", after.GetProperty("client_name").GetString());
        Assert.Equal("IDENTITY", after.GetProperty("scope").GetString());
        Assert.Equal(2, after.GetProperty("redirect_uris").GetArrayLength());
        Assert.Contains("Renamed client", await (await SendAsync(HttpMethod.Get, uri, token)).Content.ReadAsStringAsync());

        var deleted = await SendAsync(HttpMethod.Delete, uri, token);
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(HttpMethod.Get, uri, token)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await server.CreateClient().GetAsync($"/api/oauth/apps/{clientId}")).StatusCode);
    }

    [Fact]
    public async Task Without_the_right_token_a_registration_is_neither_read_nor_changed_nor_deleted()
    {
        var (mine, token) = await RegisterAsync();
        var (theirs, _) = await RegisterAsync();
        var myUri = mine.GetProperty("registration_client_uri").GetString()!;
        var theirUri = theirs.GetProperty("registration_client_uri").GetString()!;

        foreach (var (method, uri, presented) in new[]
        {
            (HttpMethod.Get, myUri, (string?)null),
            (HttpMethod.Get, myUri, "lk_reg_wrong"),
            (HttpMethod.Get, theirUri, token),
            (HttpMethod.Delete, theirUri, token),
            (HttpMethod.Get, new Uri(server.BaseAddress, "/api/oauth/register/lk_client_none").AbsoluteUri, token),
        })
        {
            var response = await SendAsync(method, uri, presented);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("invalid_token", (await JsonAsync(response)).GetProperty("error").GetString());
        }
        Assert.Equal(HttpStatusCode.OK, (await server.CreateClient().GetAsync($"/api/oauth/apps/{theirs.GetProperty("client_id").GetString()}")).StatusCode);
    }

    [Fact]
    public async Task A_change_may_narrow_but_not_widen_and_must_name_the_client()
    {
        var (metadata, token) = await RegisterAsync();
        var clientId = metadata.GetProperty("client_id").GetString()!;
        var uri = metadata.GetProperty("registration_client_uri").GetString()!;

        var wider = await SendAsync(HttpMethod.Put, uri, token, new
        {
            client_id = clientId, redirect_uris = new[] { "http://127.0.0.1:9100/cb" }, token_endpoint_auth_method = "none", scope = "IDENTITY openid",
        });
        var moreGrants = await SendAsync(HttpMethod.Put, uri, token, new
        {
            client_id = clientId, redirect_uris = new[] { "http://127.0.0.1:9100/cb" }, token_endpoint_auth_method = "none",
            grant_types = new[] { "authorization_code", "urn:ietf:params:oauth:grant-type:device_code" },
        });
        var otherId = await SendAsync(HttpMethod.Put, uri, token, new
        {
            client_id = "lk_client_someoneelse", redirect_uris = new[] { "http://127.0.0.1:9100/cb" }, token_endpoint_auth_method = "none",
        });

        foreach (var refused in new[] { wider, moreGrants, otherId })
        {
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Equal("invalid_client_metadata", (await JsonAsync(refused)).GetProperty("error").GetString());
        }
        Assert.Equal("IDENTITY USE_TOOLS", (await JsonAsync(await SendAsync(HttpMethod.Get, uri, token))).GetProperty("scope").GetString());
    }

    private async Task<(JsonElement Metadata, string Token)> RegisterAsync()
    {
        var response = await server.CreateClient().PostAsJsonAsync("/api/oauth/register", new
        {
            client_name = "Managed client",
            redirect_uris = new[] { "http://127.0.0.1:9100/cb" },
            token_endpoint_auth_method = "none",
            scope = "IDENTITY USE_TOOLS",
        });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var metadata = await JsonAsync(response);
        return (metadata, metadata.GetProperty("registration_access_token").GetString()!);
    }

    private Task<HttpResponseMessage> SendAsync(HttpMethod method, string uri, string? token, object? body = null)
    {
        var request = new HttpRequestMessage(method, uri);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }
        return server.CreateClient().SendAsync(request);
    }

    private static async Task<JsonElement> JsonAsync(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
}

public sealed class RegistrationManagementTestsOnSqlite(SqliteServer server) : RegistrationManagementTests(server), IClassFixture<SqliteServer>;

public sealed class RegistrationManagementTestsOnPostgres(PostgresServer server) : RegistrationManagementTests(server), IClassFixture<PostgresServer>;

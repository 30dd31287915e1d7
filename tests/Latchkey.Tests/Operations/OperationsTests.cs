using System.Net;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Tests.Operations;

public abstract class OperationsTests(LatchkeyServerFixture server)
{
    [Fact]
    public async Task Liveness_and_readiness_answer_healthy()
    {
        var client = server.CreateClient();

        Assert.Equal("Healthy", await client.GetStringAsync("/healthz"));
        Assert.Equal("Healthy", await client.GetStringAsync("/readyz"));
    }

    [Fact]
    public async Task The_openapi_document_describes_the_api()
    {
        var json = await server.CreateClient().GetStringAsync("/openapi/v1.json");

        using var document = JsonDocument.Parse(json);
        var paths = document.RootElement.GetProperty("paths");
        Assert.True(paths.TryGetProperty("/external-api/v1/me", out _));
        Assert.True(paths.TryGetProperty("/api/keys", out _));
        Assert.True(paths.TryGetProperty("/api/keys/{id}", out _));
        Assert.StartsWith("3.1", document.RootElement.GetProperty("openapi").GetString());

        var me = paths.GetProperty("/external-api/v1/me").GetProperty("get");
        var schemes = me.GetProperty("security").EnumerateArray().SelectMany(r => r.EnumerateObject()).ToList();
        Assert.Equal(["ApiKey", "Bearer"], schemes.Select(s => s.Name).Order());
        Assert.All(schemes, s => Assert.Equal("IDENTITY", s.Value[0].GetString()));
        Assert.True(me.GetProperty("responses").TryGetProperty("403", out _));
        var keys = paths.GetProperty("/api/keys").GetProperty("post");
        Assert.Equal("Session", keys.GetProperty("security")[0].EnumerateObject().Single().Name);
        var components = document.RootElement.GetProperty("components").GetProperty("securitySchemes");
        Assert.Equal("X-API-Key", components.GetProperty("ApiKey").GetProperty("name").GetString());
    }

    [Fact]
    public async Task The_api_reference_is_browsable_at_docs()
    {
        using var client = new HttpClient(new HttpClientHandler { AllowAutoRedirect = true }) { BaseAddress = server.BaseAddress };

        var response = await client.GetAsync("/docs");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        var html = await response.Content.ReadAsStringAsync();
        Assert.Contains("openapi/v1.json", html);
        Assert.Contains("scalar.js", html);
    }

    [Fact]
    public async Task The_scope_catalog_is_published()
    {
        using var catalog = JsonDocument.Parse(await server.CreateClient().GetStringAsync("/api/scopes"));

        var identity = catalog.RootElement.GetProperty("scopes").EnumerateArray().Single(s => s.GetProperty("name").GetString() == "IDENTITY");
        Assert.Contains("e-mail", identity.GetProperty("description").GetString());
    }

    [Fact]
    public async Task Data_protection_keys_are_kept_in_the_database_for_every_node()
    {
        await TestAccounts.SignUpAsync(server);

        Assert.True(await server.WithDbAsync(db => db.DataProtectionKeys.AnyAsync()));
    }

    [Fact]
    public async Task Unknown_paths_get_404_problem_details()
    {
        var response = await server.CreateClient().GetAsync("/api/nothing-here");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }
}

public sealed class OperationsTestsOnSqlite(SqliteServer server) : OperationsTests(server), IClassFixture<SqliteServer>
{
    [Fact]
    public async Task The_sqlite_database_runs_in_wal_mode()
    {
        var mode = await server.WithDbAsync(async db =>
        {
            var connection = db.Database.GetDbConnection();
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA journal_mode;";
            return (string?)await command.ExecuteScalarAsync();
        });

        Assert.Equal("wal", mode);
    }
}

public sealed class OperationsTestsOnPostgres(PostgresServer server) : OperationsTests(server), IClassFixture<PostgresServer>;

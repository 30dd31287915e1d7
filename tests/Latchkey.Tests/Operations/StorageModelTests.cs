using Latchkey.Features.AuthorizationServer.Stores;
using Latchkey.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;

namespace Latchkey.Tests.Operations;

/// <summary>
/// The model Latchkey runs with is the compiled one (Storage/CompiledModels), and a start on an
/// up-to-date database skips EF Core's own comparison of the model with the migrations: both are
/// checked here instead, against the model that OnModelCreating builds.
/// </summary>
public abstract class StorageModelTests(LatchkeyServerFixture server)
{
    private const string Fix = "Run scripts/update-model.sh (with a migration name when the schema changed); see docs/architecture.md.";

    [Fact]
    public async Task The_model_has_no_changes_that_a_migration_does_not_have() =>
        Assert.False(await server.WithDbAsync(db => Task.FromResult(db.Database.HasPendingModelChanges())),
            "The model differs from the last migration's snapshot. " + Fix);

    [Fact]
    public async Task The_compiled_model_is_the_model_that_OnModelCreating_builds()
    {
        var (compiledType, compiled, built) = await server.WithDbAsync(db =>
            Task.FromResult((db.Model.GetType().FullName, Describe(db.Model), Describe(db.GetService<IDesignTimeModel>().Model))));

        Assert.StartsWith("Latchkey.Storage.CompiledModels.", compiledType);
        // What EF Core does at run time: tables and columns, keys, and each value on its way in and out.
        Assert.True(built.SequenceEqual(compiled), "The compiled model differs from the model: " +
            string.Join("; ", built.Except(compiled).Concat(compiled.Except(built)).Take(6)) + ". " + Fix);
    }

    [Fact]
    public async Task Tokens_are_indexed_for_what_Latchkey_looks_them_up_by_and_no_more()
    {
        // Every issued token is written into each of these, and every redemption rewrites the ones
        // that hold its status: OpenIddict's (application, status, subject, type) index is replaced
        // by one on the application (docs/BENCHMARKS.md).
        var indexes = await server.WithDbAsync(db => Task.FromResult(db.Model.FindEntityType(typeof(OAuthToken))!.GetIndexes()
            .Select(index => $"{Names(index.Properties)}{(index.IsUnique ? " unique" : "")}").Order(StringComparer.Ordinal).ToList()));

        Assert.Equal(["ApplicationId", "AuthorizationId", "ExpirationDate", "ReferenceId unique"], indexes);
    }

    private static List<string> Describe(IModel model)
    {
        var lines = new List<string>();
        foreach (var entity in model.GetEntityTypes())
        {
            var table = StoreObjectIdentifier.Create(entity, StoreObjectType.Table);
            lines.Add($"{entity.Name} in {entity.GetSchema()}.{entity.GetTableName()}, key {Names(entity.FindPrimaryKey()?.Properties)}, " +
                $"filtered {entity.GetDeclaredQueryFilters().Count}");
            lines.AddRange(entity.GetProperties().Select(p =>
                $"{entity.Name}.{p.Name}: {p.ClrType.Name} in {(table is { } t ? p.GetColumnName(t) : "-")} " +
                $"{p.GetRelationalTypeMapping().StoreType} via {p.GetTypeMapping().Converter?.GetType().Name ?? "-"}, " +
                $"{p.ValueGenerated}, nullable {p.IsNullable}, concurrency {p.IsConcurrencyToken}"));
            lines.AddRange(entity.GetForeignKeys().Select(fk =>
                $"{entity.Name} ({Names(fk.Properties)}) -> {fk.PrincipalEntityType.Name}, {fk.DeleteBehavior}, required {fk.IsRequired}"));
            lines.AddRange(entity.GetNavigations().Select(n => $"{entity.Name}.{n.Name} -> {n.TargetEntityType.Name}"));
        }
        lines.Sort(StringComparer.Ordinal);
        return lines;
    }

    private static string Names(IEnumerable<IReadOnlyProperty>? properties) => string.Join(", ", properties?.Select(p => p.Name) ?? []);
}

public sealed class StorageModelTestsOnSqlite(SqliteServer server) : StorageModelTests(server), IClassFixture<SqliteServer>;

public sealed class StorageModelTestsOnPostgres(PostgresServer server) : StorageModelTests(server), IClassFixture<PostgresServer>;

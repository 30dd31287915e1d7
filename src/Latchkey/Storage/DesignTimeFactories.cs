using Latchkey.Features.Accounts;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace Latchkey.Storage;

// Used only by `dotnet ef migrations add` and `dbcontext optimize`; no database is contacted.
// Identity reads its schema version from the application's services: they are given here as the server has them.
internal sealed class SqliteDesignTimeFactory : IDesignTimeDbContextFactory<SqliteLatchkeyDbContext>
{
    public SqliteLatchkeyDbContext CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<SqliteLatchkeyDbContext>().UseSqlite("Data Source=design-time.db")
            .UseApplicationServiceProvider(DesignTimeServices.Identity).Options);
}

internal sealed class PostgresDesignTimeFactory : IDesignTimeDbContextFactory<PostgresLatchkeyDbContext>
{
    public PostgresLatchkeyDbContext CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<PostgresLatchkeyDbContext>().UseNpgsql("Host=localhost;Database=latchkey_design")
            .UseApplicationServiceProvider(DesignTimeServices.Identity).Options);
}

internal static class DesignTimeServices
{
    public static readonly IServiceProvider Identity = new ServiceCollection()
        .Configure<IdentityOptions>(options => options.Stores.SchemaVersion = AccountsSetup.IdentitySchemaVersion)
        .BuildServiceProvider();
}

using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace Latchkey.Storage;

// Used only by `dotnet ef migrations add`; no database is contacted to generate a migration.
internal sealed class SqliteDesignTimeFactory : IDesignTimeDbContextFactory<SqliteLatchkeyDbContext>
{
    public SqliteLatchkeyDbContext CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<SqliteLatchkeyDbContext>().UseSqlite("Data Source=design-time.db").Options);
}

internal sealed class PostgresDesignTimeFactory : IDesignTimeDbContextFactory<PostgresLatchkeyDbContext>
{
    public PostgresLatchkeyDbContext CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<PostgresLatchkeyDbContext>().UseNpgsql("Host=localhost;Database=latchkey_design").Options);
}

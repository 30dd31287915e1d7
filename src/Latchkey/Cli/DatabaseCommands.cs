using System.CommandLine;
using Latchkey.Storage;

namespace Latchkey.Cli;

/// <summary><c>latchkey db migrate</c>.</summary>
public static class DatabaseCommands
{
    public static Command Create(CliContext context)
    {
        var migrate = new Command("migrate", "Apply pending schema migrations to the configured database.");
        migrate.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var applied = await services.GetRequiredService<DatabaseMigrator>().MigrateAsync(ct);
            await output.WriteLineAsync(applied.Count == 0
                ? "The database is up to date; no migrations were pending."
                : $"Applied {applied.Count} migration(s):{Environment.NewLine}" + string.Join(Environment.NewLine, applied.Select(m => "  " + m)));
            return CliContext.Success;
        }, cancellationToken, migrate: false));

        return new Command("db", "Database maintenance.") { migrate };
    }
}

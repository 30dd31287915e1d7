namespace Latchkey.Storage;

/// <summary>
/// A table whose row count an operator checks after a backup or restore ("API keys 3"), named
/// for people. Declared by the feature that owns the entity; see <see cref="SqliteBackup"/>.
/// </summary>
public sealed record SummarizedTable(string Label, Type EntityType);

public static class SummarizedTables
{
    public static IServiceCollection AddSummarizedTable<TEntity>(this IServiceCollection services, string label) where TEntity : class =>
        services.AddSingleton(new SummarizedTable(label, typeof(TEntity)));
}

using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;

namespace Latchkey.Storage;

/// <summary>
/// An entity type's table and columns as the EF Core model maps them, delimited for the provider's
/// SQL: for the few statements Latchkey writes itself (bulk inserts, the token writer, clean-up).
/// </summary>
internal sealed class StoreNames
{
    private readonly StoreObjectIdentifier _store;
    private readonly ISqlGenerationHelper _sql;

    private StoreNames(IEntityType entity, StoreObjectIdentifier store, ISqlGenerationHelper sql)
    {
        Entity = entity;
        _store = store;
        _sql = sql;
        Table = sql.DelimitIdentifier(store.Name, store.Schema);
    }

    public static StoreNames Of(DbContext db, Type entityType)
    {
        var entity = db.Model.FindEntityType(entityType) ?? throw new InvalidOperationException($"{entityType.Name} is not in the model.");
        return new StoreNames(entity, StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema()), db.GetService<ISqlGenerationHelper>());
    }

    public IEntityType Entity { get; }

    /// <summary>The table, with its schema where it has one.</summary>
    public string Table { get; }

    /// <summary>The column of a property (shadow properties included, such as OpenIddict's foreign keys).</summary>
    public string Column(string property) => Column(Entity.FindProperty(property) ?? throw new InvalidOperationException($"{Entity.DisplayName()} has no property {property}."));

    public string Column(IProperty property) => _sql.DelimitIdentifier(property.GetColumnName(_store)!);
}

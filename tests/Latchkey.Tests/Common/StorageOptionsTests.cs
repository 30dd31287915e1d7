using Latchkey.Storage;
using Npgsql;

namespace Latchkey.Tests.Common;

public sealed class StorageOptionsTests
{
    [Fact]
    public void PostgreSQL_connections_prepare_statements_unless_the_connection_string_says_otherwise()
    {
        var defaulted = new NpgsqlConnectionStringBuilder(new StorageOptions { ConnectionString = "Host=db;Database=latchkey" }.PostgresConnectionString);
        Assert.Equal(64, defaulted.MaxAutoPrepare);
        Assert.Equal("db", defaulted.Host);

        var off = new NpgsqlConnectionStringBuilder(new StorageOptions { ConnectionString = "Host=db;Database=latchkey;Max Auto Prepare=0" }.PostgresConnectionString);
        Assert.Equal(0, off.MaxAutoPrepare);
        var own = new NpgsqlConnectionStringBuilder(new StorageOptions { ConnectionString = "Host=db;Database=latchkey;MaxAutoPrepare=5" }.PostgresConnectionString);
        Assert.Equal(5, own.MaxAutoPrepare);
    }

    [Fact]
    public void PostgreSQL_connections_skip_the_session_reset_unless_the_connection_string_asks_for_it()
    {
        Assert.True(new NpgsqlConnectionStringBuilder(new StorageOptions { ConnectionString = "Host=db;Database=latchkey" }.PostgresConnectionString).NoResetOnClose);
        Assert.False(new NpgsqlConnectionStringBuilder(new StorageOptions { ConnectionString = "Host=db;No Reset On Close=false" }.PostgresConnectionString).NoResetOnClose);
        Assert.False(new NpgsqlConnectionStringBuilder(new StorageOptions { ConnectionString = "Host=db;NoResetOnClose=false" }.PostgresConnectionString).NoResetOnClose);
    }
}

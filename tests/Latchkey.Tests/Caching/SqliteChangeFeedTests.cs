using System.Collections.Concurrent;
using Latchkey.Cluster;
using Latchkey.Storage;
using Latchkey.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Latchkey.Tests.Caching;

/// <summary>
/// The file through which a command-line change reaches a running server on SQLite: what one
/// feed writes, another (the server) reads and invalidates, and a file it cannot trust makes it
/// drop everything.
/// </summary>
public sealed class SqliteChangeFeedTests : IAsyncLifetime, IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("latchkey-feed-").FullName;
    private readonly CacheRevisions _serverRevisions = new();
    private readonly ConcurrentQueue<CacheScope> _heard = new();
    private SqliteChangeFeed _server = null!;

    private IOptions<StorageOptions> Storage => Options.Create(new StorageOptions { ConnectionString = $"Data Source={Path.Combine(_directory, "latchkey.db")}" });

    private string FeedPath => SqliteChangeFeed.PathFor(Storage.Value.EffectiveConnectionString)!;

    public async Task InitializeAsync()
    {
        // Lines from before the server started are not replayed.
        await File.WriteAllTextAsync(FeedPath, "ApiKeys\n");
        _serverRevisions.Invalidated += _heard.Enqueue;
        _server = new SqliteChangeFeed(Storage, _serverRevisions, NullLogger<SqliteChangeFeed>.Instance);
        await _server.StartAsync(CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await _server.StopAsync(CancellationToken.None);
        Directory.Delete(_directory, recursive: true);
    }

    public void Dispose() => _server.Dispose();

    private SqliteChangeFeed Command() => new(Storage, new CacheRevisions(), NullLogger<SqliteChangeFeed>.Instance);

    [Fact]
    public async Task What_a_command_announces_is_invalidated_on_the_server_and_nothing_else()
    {
        var command = Command();
        command.Announce(CacheScope.Users);
        command.Announce(CacheScope.Credentials);
        command.Announce(CacheScope.Users);
        await command.FlushAsync(CancellationToken.None);
        // Nothing announced since: nothing written.
        await command.FlushAsync(CancellationToken.None);

        await Eventually.TrueAsync(() => _heard.Count >= 2, TimeSpan.FromSeconds(5), "the server reading the feed");
        await Task.Delay(600);
        Assert.Equal([CacheScope.Users, CacheScope.Credentials], _heard.Order());
        Assert.Equal(0, _serverRevisions.Current(CacheScope.ApiKeys));
        Assert.Equal("ApiKeys\nUsers\nCredentials\n", await File.ReadAllTextAsync(FeedPath));
    }

    [Fact]
    public async Task Half_a_line_waits_for_its_end_and_an_unknown_line_invalidates_everything()
    {
        await File.AppendAllTextAsync(FeedPath, "Us");
        await Task.Delay(600);
        Assert.Empty(_heard);

        await File.AppendAllTextAsync(FeedPath, "ers\n");
        await Eventually.TrueAsync(() => _heard.Contains(CacheScope.Users), TimeSpan.FromSeconds(5), "the completed line");
        Assert.Single(_heard);

        await File.AppendAllTextAsync(FeedPath, "SomethingNewer\n");
        await Eventually.TrueAsync(() => _heard.Count >= 1 + Enum.GetValues<CacheScope>().Length, TimeSpan.FromSeconds(5), "everything invalidated");
    }

    [Fact]
    public async Task A_feed_started_over_invalidates_everything_and_is_read_from_its_new_start()
    {
        var full = new string('x', (int)SqliteChangeFeed.MaxLength) + "\n";
        await File.AppendAllTextAsync(FeedPath, full);
        await Eventually.TrueAsync(() => _heard.Count >= Enum.GetValues<CacheScope>().Length, TimeSpan.FromSeconds(5), "the unknown line");
        _heard.Clear();

        // Past its limit, the next command starts the file over.
        var command = Command();
        command.Announce(CacheScope.McpServers);
        await command.FlushAsync(CancellationToken.None);
        Assert.Equal("McpServers\n", await File.ReadAllTextAsync(FeedPath));

        await Eventually.TrueAsync(() => _heard.Count >= Enum.GetValues<CacheScope>().Length, TimeSpan.FromSeconds(5), "everything invalidated");
        await Task.Delay(600);
        // Read from the new start: nothing after it is lost, and nothing read twice (the one line
        // is heard on its own only when a poll fell between the truncation and the write).
        Assert.InRange(_heard.Count, Enum.GetValues<CacheScope>().Length, Enum.GetValues<CacheScope>().Length + 1);
    }
}

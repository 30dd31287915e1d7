using System.Text;
using Latchkey.Storage;
using Microsoft.Extensions.Options;

namespace Latchkey.Cluster;

/// <summary>
/// How a command-line change reaches a running server on SQLite, where there is no LISTEN/NOTIFY:
/// the command appends the cache scopes it changed to a small file beside the database
/// (<c>latchkey.db-changes</c>, one scope name per line), and the server, which polls the file's
/// length four times a second, reads what was appended and invalidates those scopes. A revoked
/// key is so refused within a quarter of a second instead of <c>Caching:MaxAgeSeconds</c>.
/// A server's own changes need no announcement: it invalidates its caches as it commits them.
/// </summary>
public sealed partial class SqliteChangeFeed(IOptions<StorageOptions> storage, CacheRevisions revisions, ILogger<SqliteChangeFeed> logger)
    : BackgroundService, ICacheAnnouncer, ICacheAnnouncementSender
{
    /// <summary>Past this size the next command starts the file over; a server that sees it shrink invalidates everything.</summary>
    internal const long MaxLength = 64 * 1024;
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);

    private readonly string? _path = PathFor(storage.Value.EffectiveConnectionString);
    private int _pendingScopes;
    private long _startOffset;

    /// <summary>The file beside the database, or null for an in-memory database.</summary>
    public static string? PathFor(string connectionString) =>
        StorageOptions.SqliteFileOf(connectionString) is { } database ? database + "-changes" : null;

    public void Announce(CacheScope scope) => Interlocked.Or(ref _pendingScopes, CacheScopeBits.Of(scope));

    /// <summary>Appends the scopes changed so far (called by the command line as it finishes).</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        var scopes = Interlocked.Exchange(ref _pendingScopes, 0);
        if (scopes == 0 || _path is null)
        {
            return;
        }
        var lines = string.Concat(CacheScopeBits.In(scopes).Select(scope => $"{scope}\n"));
        var mode = LengthOf(_path) > MaxLength ? FileMode.Create : FileMode.Append;
        // One write of whole lines to a file opened for appending: a reader never sees half a line
        // it would take for a whole one (it only consumes up to the last newline in any case).
        await using var file = new FileStream(_path, mode, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
        await file.WriteAsync(Encoding.ASCII.GetBytes(lines), cancellationToken);
    }

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        // What was announced before this server started is already in what it will read. Noted
        // here: ExecuteAsync runs on a thread of its own, perhaps after the next announcement.
        _startOffset = _path is null ? 0 : LengthOf(_path);
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_path is null)
        {
            return;
        }
        var offset = _startOffset;
        using var timer = new PeriodicTimer(PollInterval);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                offset = ReadFrom(_path, offset);
            }
            catch (IOException exception)
            {
                LogUnreadable(logger, _path, exception.Message);
            }
        }
    }

    private long ReadFrom(string path, long offset)
    {
        var length = LengthOf(path);
        if (length == offset)
        {
            return offset;
        }
        if (length < offset)
        {
            // Started over (or removed): whatever it said in between is unknown.
            revisions.InvalidateAll();
            return length;
        }
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        file.Seek(offset, SeekOrigin.Begin);
        var appended = new byte[length - offset];
        file.ReadExactly(appended);
        var complete = Array.LastIndexOf(appended, (byte)'\n') + 1;
        foreach (var line in Encoding.ASCII.GetString(appended, 0, complete).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (Enum.TryParse<CacheScope>(line, out var scope))
            {
                revisions.Invalidate(scope);
            }
            else
            {
                // Written by a newer version, or damaged: drop everything rather than guess.
                revisions.InvalidateAll();
            }
        }
        return offset + complete;
    }

    private static long LengthOf(string path)
    {
        var file = new FileInfo(path);
        return file.Exists ? file.Length : 0;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not read the change feed {Path}: {Reason}; command-line changes are seen within Caching:MaxAgeSeconds")]
    private static partial void LogUnreadable(ILogger logger, string path, string reason);
}

/// <summary>An announcer that holds what it collected until told to send it: the command line, as it finishes.</summary>
public interface ICacheAnnouncementSender
{
    Task FlushAsync(CancellationToken cancellationToken);
}

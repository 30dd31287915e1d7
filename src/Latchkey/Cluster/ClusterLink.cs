using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Security.Cryptography;
using Latchkey.Storage;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Latchkey.Cluster;

/// <summary>Bound from <c>Cluster</c>: how the nodes on one PostgreSQL keep in touch.</summary>
public sealed class ClusterOptions
{
    public const string SectionName = "Cluster";

    /// <summary>The PostgreSQL notification channel; deployments sharing one database need different ones.</summary>
    [Required, RegularExpression("^[a-z_][a-z0-9_]{0,62}$", ErrorMessage = "Cluster:Channel must be a lower-case PostgreSQL identifier.")]
    public string Channel { get; set; } = "latchkey";

    /// <summary>How often a node checks its link (and, when it does not lead, tries to take over the background jobs).</summary>
    [Range(1, 300)]
    public int CheckSeconds { get; set; } = 2;

    /// <summary>Whether this node may lead the background jobs; turn off on nodes that should only serve requests.</summary>
    public bool LeadJobs { get; set; } = true;

    /// <summary>The longest wait between attempts to reconnect a lost link.</summary>
    [Range(1, 300)]
    public int MaxReconnectSeconds { get; set; } = 5;
}

/// <summary>Whether this node runs the background jobs (clean-up, proactive refresh).</summary>
public interface IJobLeadership
{
    bool IsLeader { get; }
}

/// <summary>On SQLite there is one node: it leads.</summary>
internal sealed class SingleNodeLeadership : IJobLeadership
{
    public bool IsLeader => true;
}

/// <summary>
/// This node's link to the other nodes on one PostgreSQL, over one dedicated connection:
/// <list type="bullet">
/// <item>Cache invalidations committed here are announced with <c>NOTIFY</c>, and those of other
/// nodes are heard with <c>LISTEN</c>, so a revocation holds on every node within milliseconds.
/// While the link is down the caches are not trusted (every check reads the database), and
/// everything is invalidated when it comes back, since announcements may have been missed.</item>
/// <item>The node holding a session-level advisory lock leads the background jobs. PostgreSQL
/// releases the lock when the session ends: at once for a process that dies (its socket
/// closes), and for a host cut off from the network when PostgreSQL's TCP keepalives give up on
/// the session (see docs/operations.md). Another node then takes over within
/// <see cref="ClusterOptions.CheckSeconds"/>.</item>
/// </list>
/// </summary>
public sealed partial class ClusterLink : BackgroundService, IJobLeadership, ICacheAnnouncer, ICacheAnnouncementSender
{
    /// <summary>The advisory lock key of the job leader ("LKJOBS" in ASCII).</summary>
    public const long LeaderLockKey = 0x4C4B_4A4F_4253;

    private readonly NpgsqlDataSource _dataSource;
    private readonly CacheRevisions _revisions;
    private readonly ClusterOptions _options;
    private readonly ILogger<ClusterLink> _logger;
    private readonly SemaphoreSlim _announceSignal = new(0);
    private int _pendingScopes;
    private volatile bool _isLeader;

    public ClusterLink(IOptions<StorageOptions> storage, IOptions<ClusterOptions> options, CacheRevisions revisions, ILogger<ClusterLink> logger)
    {
        var connection = new NpgsqlConnectionStringBuilder(storage.Value.PostgresConnectionString)
        {
            // Its own small pool, apart from the requests': the listening connection and announcements.
            MaxPoolSize = 4,
            Pooling = true,
            // A dead peer is noticed by the periodic check; keepalives catch a silent network too.
            KeepAlive = 10,
            ApplicationName = "latchkey-cluster",
            // The leader's advisory lock is a session lock: a connection back in the pool must not keep it.
            NoResetOnClose = false,
        };
        _dataSource = NpgsqlDataSource.Create(connection.ConnectionString);
        _options = options.Value;
        _revisions = revisions;
        _logger = logger;
        NodeId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        // Until the link is up, the caches cannot know what other nodes change.
        revisions.Trusted = false;
    }

    /// <summary>Names this node in announcements, so it ignores its own.</summary>
    public string NodeId { get; }

    public bool IsLeader => _isLeader;

    /// <summary>Whether the link is up: announcements of other nodes are being heard.</summary>
    public bool IsListening => _revisions.Trusted;

    public void Announce(CacheScope scope)
    {
        if (Interlocked.Or(ref _pendingScopes, CacheScopeBits.Of(scope)) == 0 && !_disposed)
        {
            try
            {
                _announceSignal.Release();
            }
            catch (ObjectDisposedException)
            {
                // A write committed while the node stops: the other nodes' caches expire by age.
            }
        }
    }

    /// <summary>Sends what is waiting to be announced now; for one-shot commands, which run no background services.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        var scopes = Interlocked.Exchange(ref _pendingScopes, 0);
        if (scopes != 0)
        {
            await SendAsync(scopes, cancellationToken);
        }
    }

    private volatile bool _disposed;

    public override void Dispose()
    {
        _disposed = true;
        base.Dispose();
        _announceSignal.Dispose();
        _dataSource.Dispose();
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(ListenAsync(stoppingToken), AnnounceAsync(stoppingToken));

    private async Task AnnounceAsync(CancellationToken stoppingToken)
    {
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            var scopes = Interlocked.Exchange(ref _pendingScopes, 0);
            if (scopes == 0)
            {
                try
                {
                    await _announceSignal.WaitAsync(stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                continue;
            }
            try
            {
                await SendAsync(scopes, stoppingToken);
                failures = 0;
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                // Kept for the next attempt; the other nodes' caches expire by age meanwhile.
                Interlocked.Or(ref _pendingScopes, scopes);
                if (failures++ == 0)
                {
                    LogAnnounceFailed(_logger, exception.GetType().Name);
                }
                await DelayAsync(Backoff(failures), stoppingToken);
            }
        }
    }

    private async Task SendAsync(int scopes, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand("SELECT pg_notify($1, $2)");
        command.Parameters.Add(new NpgsqlParameter { Value = _options.Channel });
        command.Parameters.Add(new NpgsqlParameter { Value = $"{NodeId}:{scopes.ToString(CultureInfo.InvariantCulture)}" });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private async Task ListenAsync(CancellationToken stoppingToken)
    {
        var failures = 0;
        var check = TimeSpan.FromSeconds(_options.CheckSeconds);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await _dataSource.OpenConnectionAsync(stoppingToken);
                connection.Notification += OnNotification;
                // Quoted: the option allows names that are reserved words (user, all, ...).
                await using (var listen = new NpgsqlCommand($"LISTEN \"{_options.Channel}\"", connection))
                {
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                }
                // Anything announced while the link was down was missed.
                _revisions.InvalidateAll();
                _revisions.Trusted = true;
                if (failures > 0)
                {
                    LogReconnected(_logger);
                }
                failures = 0;
                while (!stoppingToken.IsCancellationRequested)
                {
                    if (!_isLeader && _options.LeadJobs)
                    {
                        await TryLeadAsync(connection, stoppingToken);
                    }
                    if (!await connection.WaitAsync(check, stoppingToken))
                    {
                        // Nothing heard for a while: make sure the connection still answers.
                        await using var ping = new NpgsqlCommand("SELECT 1", connection) { CommandTimeout = _options.CheckSeconds + 5 };
                        await ping.ExecuteScalarAsync(stoppingToken);
                    }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception exception)
            {
                LoseLink(stopping: false);
                if (failures++ == 0)
                {
                    LogLinkLost(_logger, exception.GetType().Name, exception.Message);
                }
                await DelayAsync(Backoff(failures), stoppingToken);
            }
        }
        LoseLink(stopping: true);
    }

    private void LoseLink(bool stopping)
    {
        _revisions.Trusted = false;
        if (!stopping)
        {
            _revisions.InvalidateAll();
        }
        if (_isLeader)
        {
            _isLeader = false;
            if (!stopping)
            {
                LogLeadershipLost(_logger, NodeId);
            }
        }
    }

    private async Task TryLeadAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT pg_try_advisory_lock($1)", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = LeaderLockKey });
        if (await command.ExecuteScalarAsync(cancellationToken) is true)
        {
            _isLeader = true;
            LogLeading(_logger, NodeId);
        }
    }

    private void OnNotification(object sender, NpgsqlNotificationEventArgs notification)
    {
        var payload = notification.Payload;
        var separator = payload.IndexOf(':');
        if (separator <= 0 || payload.AsSpan(0, separator).SequenceEqual(NodeId)
            || !int.TryParse(payload.AsSpan(separator + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var scopes))
        {
            return;
        }
        foreach (var scope in CacheScopeBits.In(scopes))
        {
            _revisions.Invalidate(scope);
        }
    }

    private TimeSpan Backoff(int failures) =>
        TimeSpan.FromMilliseconds(Math.Min(250 * Math.Pow(2, Math.Min(failures - 1, 10)), _options.MaxReconnectSeconds * 1000.0));

    private static async Task DelayAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(delay, cancellationToken);
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {NodeId} now runs the background jobs")]
    private static partial void LogLeading(ILogger logger, string nodeId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Node {NodeId} no longer runs the background jobs (its database link was lost)")]
    private static partial void LogLeadershipLost(ILogger logger, string nodeId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The link to the other nodes was lost ({Error}: {Message}); caches read through until it is back")]
    private static partial void LogLinkLost(ILogger logger, string error, string message);

    [LoggerMessage(Level = LogLevel.Information, Message = "The link to the other nodes is back")]
    private static partial void LogReconnected(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Announcing a change to the other nodes failed ({Error}); retrying")]
    private static partial void LogAnnounceFailed(ILogger logger, string error);
}

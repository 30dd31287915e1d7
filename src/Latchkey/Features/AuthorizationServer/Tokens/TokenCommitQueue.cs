using System.Threading.Channels;
using Latchkey.Features.AuthorizationServer.Stores;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Latchkey.Features.AuthorizationServer.Tokens;

/// <summary>
/// What one token request writes: the rows of the tokens it issues and, for a refresh, the token
/// it redeems (only if that token is still valid when the write happens).
/// </summary>
internal sealed class TokenWrite(IReadOnlyList<TokenRow> inserts, string? redeemTokenId = null)
{
    public IReadOnlyList<TokenRow> Inserts { get; } = inserts;

    public string? RedeemTokenId { get; } = redeemTokenId;

    internal TaskCompletionSource<TokenWriteOutcome> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

internal enum TokenWriteOutcome
{
    /// <summary>Committed: the tokens exist and the redeemed one is marked so.</summary>
    Committed,

    /// <summary>The token to redeem was no longer valid (redeemed or revoked meanwhile): nothing was written for this request.</summary>
    NotRedeemable,

    /// <summary>The batch could not be written (nothing of it was committed); the request takes the general path.</summary>
    Failed,
}

/// <summary>
/// Group commit for the direct grants: requests queue their writes, and one writer puts everything
/// queued into one transaction (each refresh's redeem is a conditional update in it, so a token is
/// redeemed once however many ask), commits, and only then lets each request answer. A token is
/// therefore durably written before its answer, as with a write per request, but a busy token
/// endpoint pays for one commit per batch instead of one per token, and on SQLite takes the
/// process's write gate once per batch.
/// </summary>
internal sealed partial class TokenCommitQueue(IServiceScopeFactory scopes, TimeProvider time, ILogger<TokenCommitQueue> logger, SqliteWriteGate? writeGate = null)
    : IDisposable
{
    /// <summary>Large enough that a burst from every connection fits one transaction, small enough to keep a transaction short.</summary>
    internal const int MaxBatch = 256;

    private readonly Channel<TokenWrite> _queue = Channel.CreateUnbounded<TokenWrite>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _starting = new();
    private Task? _writer;

    public Task<TokenWriteOutcome> WriteAsync(TokenWrite write)
    {
        EnsureWriter();
        if (!_queue.Writer.TryWrite(write))
        {
            return Task.FromResult(TokenWriteOutcome.Failed);
        }
        return write.Completion.Task;
    }

    private void EnsureWriter()
    {
        if (_writer is not null)
        {
            return;
        }
        lock (_starting)
        {
            _writer ??= Task.Run(WriteLoopAsync);
        }
    }

    private async Task WriteLoopAsync()
    {
        var batch = new List<TokenWrite>(MaxBatch);
        var reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync(_stopping.Token))
            {
                while (batch.Count < MaxBatch && reader.TryRead(out var write))
                {
                    batch.Add(write);
                }
                await CommitAsync(batch);
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
        // Whatever is left when the host stops takes the general path (or fails with the host).
        foreach (var write in batch)
        {
            write.Completion.TrySetResult(TokenWriteOutcome.Failed);
        }
        while (reader.TryRead(out var left))
        {
            left.Completion.TrySetResult(TokenWriteOutcome.Failed);
        }
    }

    private async Task CommitAsync(List<TokenWrite> batch)
    {
        var outcomes = new TokenWriteOutcome[batch.Count];
        var entered = false;
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<LatchkeyDbContext>();
            // One write at a time in this process on SQLite; the transaction below is one turn of it.
            entered = writeGate is not null && await writeGate.EnterAsync(_stopping.Token);
            await using var transaction = await db.Database.BeginTransactionAsync(_stopping.Token);
            var now = time.GetUtcNow().UtcDateTime;
            // A refresh token marked redeemed changes no cached answer (only access tokens are cached).
            // The context is pooled: the mark must not outlive these updates.
            db.ChangesNothingCached = true;
            try
            {
                for (var i = 0; i < batch.Count; i++)
                {
                    if (batch[i].RedeemTokenId is { } redeemed)
                    {
                        var updated = await db.OAuthTokens
                            .Where(token => token.Id == redeemed && token.Status == Statuses.Valid)
                            .ExecuteUpdateAsync(set => set.SetProperty(token => token.Status, Statuses.Redeemed).SetProperty(token => token.RedemptionDate, now),
                                _stopping.Token);
                        if (updated == 0)
                        {
                            outcomes[i] = TokenWriteOutcome.NotRedeemable;
                            continue;
                        }
                    }
                    foreach (var row in batch[i].Inserts)
                    {
                        var entry = db.OAuthTokens.Add(row.Token);
                        entry.Property("ApplicationId").CurrentValue = row.ApplicationId;
                        entry.Property("AuthorizationId").CurrentValue = row.AuthorizationId;
                    }
                    outcomes[i] = TokenWriteOutcome.Committed;
                }
            }
            finally
            {
                db.ChangesNothingCached = false;
            }
            await db.SaveChangesAsync(_stopping.Token);
            await transaction.CommitAsync(_stopping.Token);
        }
        catch (Exception exception) when (exception is not OperationCanceledException || !_stopping.IsCancellationRequested)
        {
            // Nothing of the batch was committed: every request in it takes the general path, which writes on its own.
            LogBatchFailed(logger, exception, batch.Count);
            Array.Fill(outcomes, TokenWriteOutcome.Failed);
        }
        finally
        {
            if (entered)
            {
                writeGate!.Exit();
            }
        }
        for (var i = 0; i < batch.Count; i++)
        {
            batch[i].Completion.TrySetResult(outcomes[i]);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "A batch of {Count} token writes failed; OpenIddict's token endpoint handles those requests one by one")]
    private static partial void LogBatchFailed(ILogger logger, Exception exception, int count);

    public void Dispose()
    {
        // Not disposed: the writer loop may still be looking at its token as it stops.
        _stopping.Cancel();
        _queue.Writer.TryComplete();
    }
}

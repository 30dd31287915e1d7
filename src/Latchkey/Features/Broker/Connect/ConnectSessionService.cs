using Latchkey.Common;
using Latchkey.Features.AgentApi;
using Latchkey.Features.Broker.Credentials;
using Latchkey.Features.Broker.Providers;
using Latchkey.Features.Webhooks;
using Latchkey.Storage;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Broker.Connect;

public sealed record ConnectSessionRequest(string? EndUserId, string[]? ProviderIds, string? RedirectUri, string[]? Tags);

/// <summary>A new session: the token and the URL to open, shown this once.</summary>
public sealed record ConnectSessionCreated(string Id, string Token, string ConnectUrl, DateTimeOffset ExpiresAt);

public sealed record ConnectSessionView(string Id, string Status, string EndUserId, IReadOnlyList<string> ProviderIds, string? RedirectUri,
    DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt, DateTimeOffset? OpenedAt, DateTimeOffset? CompletedAt, string? CredentialId, string? Error);

/// <summary>Creating connect sessions (an app's backend), opening them (the end user's browser) and recording their outcome.</summary>
public sealed class ConnectSessionService(LatchkeyDbContext db, ProviderService providers, TimeProvider time, IOptions<BrokerOptions> options, WebhookPublisher webhooks)
{
    public const string PagePath = "/connect";
    public const string CallbackPath = PagePath + "/callback";
    public static readonly OpaqueSecretFormat TokenFormat = new("lk_cs_");

    public static ConnectSessionView View(ConnectSession session, DateTimeOffset now) => new(
        session.Id, EffectiveStatus(session, now), session.EndUserId, session.Providers, session.RedirectUri, session.CreatedAt, session.ExpiresAt,
        session.OpenedAt, session.CompletedAt, session.CredentialId, session.Error);

    public static string EffectiveStatus(ConnectSession session, DateTimeOffset now) =>
        session.Status is ConnectSessionStatus.Pending or ConnectSessionStatus.Opened && session.ExpiresAt <= now ? ConnectSessionStatus.Expired : session.Status;

    public async Task<Outcome<ConnectSessionCreated>> CreateAsync(string accountId, ConnectSessionRequest request, string baseUrl, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(request.EndUserId) || request.EndUserId.Length > 200)
        {
            return AgentError.BadRequest("end_user_id is required: your own id for the person who connects (1 to 200 characters).");
        }
        if (request.ProviderIds is not { Length: > 0 and <= 50 })
        {
            return AgentError.BadRequest("provider_ids must name 1 to 50 provider instances the person may connect (GET /mcp/providers lists them).");
        }
        if (CredentialTags.Check(request.Tags) is { } badTags)
        {
            return AgentError.BadRequest(badTags);
        }
        if (request.RedirectUri is { } redirect && (redirect.Length > 2000 || !Uri.TryCreate(redirect, UriKind.Absolute, out var uri)
                                                    || uri.Scheme is not ("https" or "http") || uri.Fragment.Length > 0))
        {
            return AgentError.BadRequest("redirect_uri must be an absolute http(s) URL without a fragment.");
        }
        foreach (var providerId in request.ProviderIds.Distinct())
        {
            if (await providers.FindVisibleAsync(accountId, providerId, cancellationToken) is null)
            {
                return AgentError.NotFound("provider", $"There is no provider {InputEcho.Quote(providerId)}.");
            }
        }
        var token = TokenFormat.Generate();
        var now = time.GetUtcNow();
        var session = new ConnectSession
        {
            Id = Identifiers.NewHex("cs"),
            TokenHash = SecretHash.Compute(token),
            AccountId = accountId,
            EndUserId = request.EndUserId,
            ProviderIds = string.Join(' ', request.ProviderIds.Distinct()),
            Tags = CredentialTags.Encode(request.Tags),
            RedirectUri = request.RedirectUri,
            CreatedAt = now,
            ExpiresAt = now.AddMinutes(options.Value.ConnectSessionMinutes),
        };
        db.BrokerConnectSessions.Add(session);
        await db.SaveChangesAsync(cancellationToken);
        return new ConnectSessionCreated(session.Id, token, QueryHelpers.AddQueryString(baseUrl + PagePath, "token", token), session.ExpiresAt);
    }

    public async Task<Outcome<ConnectSessionView>> FindAsync(string accountId, string id, CancellationToken cancellationToken) =>
        await db.BrokerConnectSessions.AsNoTracking().FirstOrDefaultAsync(s => s.Id == id && s.AccountId == accountId, cancellationToken) is { } session
            ? View(session, time.GetUtcNow())
            : AgentError.NotFound("connect_session", $"You have no connect session {InputEcho.Quote(id)}.");

    /// <summary>
    /// Whether a link can still be opened, without spending it: the page asks the person to go on
    /// first, so that a link preview or a mail scanner fetching the URL does not use it up.
    /// </summary>
    public async Task<string?> CheckAsync(string? token, CancellationToken cancellationToken) =>
        (await OpenableAsync(token, cancellationToken)).Problem;

    /// <summary>
    /// Spends the link: a pending, unexpired session becomes this browser's (by the hash of
    /// <paramref name="browserSecret"/>, which the browser keeps in a cookie). Null with the reason
    /// when the token is unknown, used or expired.
    /// </summary>
    public async Task<(ConnectSession? Session, string? Problem)> OpenAsync(string? token, string browserSecret, CancellationToken cancellationToken)
    {
        var (session, problem) = await OpenableAsync(token, cancellationToken);
        if (session is null)
        {
            return (null, problem);
        }
        var browserHash = SecretHash.Compute(browserSecret);
        var now = time.GetUtcNow();
        // Conditional: of two browsers opening one link, one wins.
        var opened = await db.BrokerConnectSessions.Where(s => s.Id == session.Id && s.Status == ConnectSessionStatus.Pending)
            .ExecuteUpdateAsync(s => s.SetProperty(c => c.Status, ConnectSessionStatus.Opened).SetProperty(c => c.BrowserHash, browserHash)
                .SetProperty(c => c.OpenedAt, now), cancellationToken);
        return opened == 1
            ? (await db.BrokerConnectSessions.AsNoTracking().FirstAsync(s => s.Id == session.Id, cancellationToken), null)
            : (null, AlreadyUsed);
    }

    private const string AlreadyUsed = "This link has already been used. Go back to the app and start again.";

    /// <summary>The session a link names while it can still be opened; otherwise the reason, in words for the person.</summary>
    private async Task<(ConnectSession? Session, string? Problem)> OpenableAsync(string? token, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 200)
        {
            return (null, "This link is not a connect link.");
        }
        var hash = SecretHash.Compute(token);
        var session = await db.BrokerConnectSessions.AsNoTracking().FirstOrDefaultAsync(s => s.TokenHash == hash, cancellationToken);
        return session is null ? (null, "This link is not valid. Go back to the app and start again.")
            : session.ExpiresAt <= time.GetUtcNow() ? (null, "This link has expired. Go back to the app and start again.")
            : session.Status != ConnectSessionStatus.Pending ? (null, AlreadyUsed)
            : (session, null);
    }

    /// <summary>The open session this browser holds, by its cookie; null when it holds none (or it ended or expired).</summary>
    public async Task<ConnectSession?> ForBrowserAsync(string? sessionId, string? browserSecret, CancellationToken cancellationToken)
    {
        // The cookie is the browser's to send: only a well-formed id reaches the database.
        if (sessionId is not { Length: 19 } || !sessionId.StartsWith("cs_", StringComparison.Ordinal) || !sessionId[3..].All(char.IsAsciiHexDigitLower)
            || string.IsNullOrEmpty(browserSecret) || browserSecret.Length > 100)
        {
            return null;
        }
        var session = await db.BrokerConnectSessions.AsNoTracking().FirstOrDefaultAsync(s => s.Id == sessionId, cancellationToken);
        return session?.BrowserHash is { } hash && SecretHash.Matches(hash, browserSecret) && EffectiveStatus(session, time.GetUtcNow()) == ConnectSessionStatus.Opened
            ? session
            : null;
    }

    /// <summary>
    /// Records the outcome (once: false when the session had already finished, for instance by a
    /// second form sent at the same time), tells the account's webhooks, and gives the URL the
    /// browser goes to: the app's redirect URI with the outcome in the query, or null to show it on the page.
    /// </summary>
    public async Task<(bool Recorded, string? Back)> FinishAsync(ConnectSession session, Credential? credential, string? error)
    {
        var now = time.GetUtcNow();
        var status = credential is null ? ConnectSessionStatus.Failed : ConnectSessionStatus.Completed;
        var finished = await db.BrokerConnectSessions.Where(s => s.Id == session.Id && s.Status == ConnectSessionStatus.Opened)
            .ExecuteUpdateAsync(s => s.SetProperty(c => c.Status, status).SetProperty(c => c.CompletedAt, now)
                .SetProperty(c => c.CredentialId, credential == null ? null : credential.Id).SetProperty(c => c.Error, error), CancellationToken.None);
        if (finished != 1)
        {
            return (false, null);
        }
        await webhooks.PublishAsync(session.AccountId, WebhookEvents.ConnectSessionCompleted, new
        {
            connect_session_id = session.Id,
            status,
            end_user_id = session.EndUserId,
            credential_id = credential?.Id,
            provider_id = credential?.ProviderInstanceId,
            error,
        }, CancellationToken.None);
        if (session.RedirectUri is not { } redirect)
        {
            return (true, null);
        }
        var outcome = new Dictionary<string, string?> { ["connect_session_id"] = session.Id, ["status"] = status };
        if (credential is not null)
        {
            outcome["credential_id"] = credential.Id;
            outcome["provider_id"] = credential.ProviderInstanceId;
        }
        else
        {
            outcome["error"] = error;
        }
        return (true, QueryHelpers.AddQueryString(redirect, outcome));
    }

    /// <summary>Removes sessions a day after they expired.</summary>
    public Task<int> PruneAsync(CancellationToken cancellationToken)
    {
        var threshold = time.GetUtcNow().AddDays(-1);
        return db.BrokerConnectSessions.Where(s => s.ExpiresAt < threshold).ExecuteDeleteAsync(cancellationToken);
    }
}

internal sealed class ConnectSessionCleanup(ConnectSessionService sessions) : Operations.ICleanupTask
{
    public async Task<IReadOnlyList<Operations.CleanupCount>> RunAsync(CancellationToken cancellationToken) =>
        [new("expired connect sessions", await sessions.PruneAsync(cancellationToken))];
}

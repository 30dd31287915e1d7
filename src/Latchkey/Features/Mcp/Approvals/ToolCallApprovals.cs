using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Latchkey.Common;
using Latchkey.Features.AgentApi;
using Latchkey.Features.SecurityEvents;
using Latchkey.Features.Webhooks;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Mcp.Approvals;

/// <summary>How a held call ended: go ahead, refused by the owner, or still waiting when the wait ran out.</summary>
public enum HoldResult { Proceed, Denied, Waiting }

public sealed record ApprovalView(
    string Id, string ServerId, string ServerName, string Tool, JsonElement? Arguments, string Caller, string? SessionId,
    string Status, string? Grant, DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt, DateTimeOffset? DecidedAt, DateTimeOffset? GrantExpiresAt,
    string ApprovalUrl);

public sealed record ApprovalList(IReadOnlyList<ApprovalView> Approvals);

/// <summary>What the owner decides: <c>approve</c> (with a grant: <c>once</c>, <c>session</c> or <c>hour</c>) or <c>deny</c>.</summary>
public sealed record ApprovalDecision(string? Decision, string? Grant);

/// <summary>
/// Human approval of tool calls. A call to a <c>require_approval</c> tool is held (a row in the
/// database) until the owner decides on the approvals page or by API, or the wait runs out; every
/// node sees every decision, and each approval changes state once, by a conditional update, so
/// it is decided once and an approval for one call lets one call through.
/// </summary>
public sealed partial class ToolCallApprovals(
    LatchkeyDbContext db,
    TimeProvider time,
    IOptions<McpOptions> options,
    SecurityEventLog securityLog,
    ToolCallAudit audit,
    IHttpClientFactory httpClients,
    WebhookPublisher webhooks,
    ILogger<ToolCallApprovals> logger)
{
    public const string WebhookClientName = "latchkey-approval-webhook";
    public const string PagePath = "/profile/approvals";
    private static readonly TimeSpan SessionGrantLifetime = TimeSpan.FromHours(24);
    private static readonly TimeSpan HourGrantLifetime = TimeSpan.FromHours(1);

    private McpOptions Settings => options.Value;

    public static string ApprovalUrl(string baseUrl, string id) => $"{baseUrl}{PagePath}#{id}";

    public static string Hash(string tool, JsonElement? arguments) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(tool + "\n" + (arguments?.GetRawText() ?? ""))));

    /// <summary>
    /// Holds a call until it may go ahead: at once when an approval covers it (for the hour, the
    /// session, or this very call, which the approval is then spent on), else after the owner
    /// approves within the wait. The same call retried finds its earlier request instead of
    /// asking again.
    /// </summary>
    public async Task<(HoldResult Result, string ApprovalId)> HoldAsync(
        GatewayRoute route, string caller, string? sessionId, string tool, JsonElement? arguments, string baseUrl, CancellationToken cancellationToken)
    {
        var hash = Hash(tool, arguments);
        if (await UseGrantAsync(route.ServerId, caller, sessionId, tool, hash, null, cancellationToken) is { } granted)
        {
            return (HoldResult.Proceed, granted);
        }

        var now = time.GetUtcNow();
        var pending = await db.McpApprovals.AsNoTracking()
            .Where(a => a.ServerId == route.ServerId && a.ToolName == tool && a.Caller == caller && a.Status == ApprovalStatuses.Pending
                        && a.ArgumentsHash == hash && a.ExpiresAt > now)
            .OrderByDescending(a => a.CreatedAt).Select(a => a.Id).FirstOrDefaultAsync(cancellationToken);
        if (pending is null)
        {
            var approval = new ToolCallApproval
            {
                Id = Identifiers.NewHex("apr"),
                OwnerId = route.OwnerId,
                ServerId = route.ServerId,
                ServerName = route.Name,
                ToolName = tool,
                ArgumentsJson = arguments?.GetRawText() is { Length: <= 16384 } raw ? raw : null,
                ArgumentsHash = hash,
                Caller = caller,
                SessionId = sessionId is { Length: <= 200 } ? sessionId : null,
                Status = ApprovalStatuses.Pending,
                CreatedAt = now,
                ExpiresAt = now.AddMinutes(Settings.ApprovalLifetimeMinutes),
            };
            db.McpApprovals.Add(approval);
            await db.SaveChangesAsync(cancellationToken);
            db.ChangeTracker.Clear();
            pending = approval.Id;
            securityLog.Record(route.OwnerId, SecurityEventTypes.ToolCallApprovalRequested, approval.Id, caller, $"server={route.ServerId} tool={tool}");
            if (route.ApprovalWebhookUrl is { } webhook)
            {
                _ = AnnounceAsync(webhook, approval, baseUrl);
            }
            // The account's signed webhooks hear of it too (durably, with retries): same fields, no arguments.
            await webhooks.PublishAsync(route.OwnerId, WebhookEvents.ApprovalRequested, Announcement(approval, baseUrl), CancellationToken.None);
        }

        var deadline = time.GetUtcNow().AddSeconds(Settings.ApprovalWaitSeconds);
        while (true)
        {
            var status = await db.McpApprovals.AsNoTracking().Where(a => a.Id == pending).Select(a => a.Status).FirstOrDefaultAsync(cancellationToken);
            if (status == ApprovalStatuses.Approved
                && await UseGrantAsync(route.ServerId, caller, sessionId, tool, hash, pending, cancellationToken) is { } used)
            {
                return (HoldResult.Proceed, used);
            }
            if (status is ApprovalStatuses.Denied)
            {
                return (HoldResult.Denied, pending);
            }
            if (status is not ApprovalStatuses.Pending || time.GetUtcNow() >= deadline)
            {
                return (HoldResult.Waiting, pending);
            }
            await Task.Delay(TimeSpan.FromMilliseconds(Settings.ApprovalPollMilliseconds), time, cancellationToken);
        }
    }

    /// <summary>
    /// The approval that lets this call through, if one does: for the hour or the session (not
    /// spent), or for this call (spent now, by the one request whose update takes it).
    /// </summary>
    private async Task<string?> UseGrantAsync(string serverId, string caller, string? sessionId, string tool, string hash, string? onlyId, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var grants = await db.McpApprovals.AsNoTracking()
            .Where(a => a.ServerId == serverId && a.ToolName == tool && a.Caller == caller && a.Status == ApprovalStatuses.Approved
                        && a.GrantExpiresAt > now && (onlyId == null || a.Id == onlyId))
            .Select(a => new { a.Id, a.Grant, a.SessionId, a.ArgumentsHash })
            .ToListAsync(cancellationToken);
        if (grants.FirstOrDefault(g => g.Grant == ApprovalGrants.Hour || (g.Grant == ApprovalGrants.Session && sessionId is not null && g.SessionId == sessionId)) is { } standing)
        {
            return standing.Id;
        }
        foreach (var once in grants.Where(g => g.Grant == ApprovalGrants.Once && g.ArgumentsHash == hash))
        {
            var spent = await db.McpApprovals.Where(a => a.Id == once.Id && a.Status == ApprovalStatuses.Approved)
                .ExecuteUpdateAsync(s => s.SetProperty(a => a.Status, ApprovalStatuses.Used), cancellationToken);
            if (spent == 1)
            {
                return once.Id;
            }
        }
        return null;
    }

    /// <summary>The owner's decision; only a pending approval can be decided, once, whichever node takes it.</summary>
    public async Task<Outcome<ToolCallApproval>> DecideAsync(string ownerId, string id, ApprovalDecision decision, CancellationToken cancellationToken)
    {
        var approve = decision.Decision == "approve";
        if (!approve && decision.Decision != "deny")
        {
            return AgentError.BadRequest("decision must be approve or deny.");
        }
        var grant = approve ? decision.Grant ?? ApprovalGrants.Once : null;
        if (approve && !ApprovalGrants.IsKnown(grant))
        {
            return AgentError.BadRequest("grant must be once (this call), session (this agent's calls of the tool in its MCP session) or hour.");
        }
        if (grant == ApprovalGrants.Session
            && await db.McpApprovals.AnyAsync(a => a.Id == id && a.OwnerId == ownerId && a.SessionId == null, cancellationToken))
        {
            return AgentError.BadRequest("This call came without an MCP session (Mcp-Session-Id), so there is no session to approve: approve it once or for an hour.");
        }
        var now = time.GetUtcNow();
        DateTimeOffset? grantExpires = grant switch
        {
            ApprovalGrants.Hour => now + HourGrantLifetime,
            ApprovalGrants.Session => now + SessionGrantLifetime,
            ApprovalGrants.Once => now.AddMinutes(Settings.ApprovalLifetimeMinutes),
            _ => null,
        };
        var status = approve ? ApprovalStatuses.Approved : ApprovalStatuses.Denied;
        var decided = await db.McpApprovals
            .Where(a => a.Id == id && a.OwnerId == ownerId && a.Status == ApprovalStatuses.Pending && a.ExpiresAt > now)
            .ExecuteUpdateAsync(s => s.SetProperty(a => a.Status, status).SetProperty(a => a.Grant, grant)
                .SetProperty(a => a.DecidedAt, now).SetProperty(a => a.GrantExpiresAt, grantExpires), cancellationToken);
        var approval = await db.McpApprovals.AsNoTracking().FirstOrDefaultAsync(a => a.Id == id && a.OwnerId == ownerId, cancellationToken);
        if (approval is null)
        {
            return AgentError.NotFound("approval", $"You have no approval {InputEcho.Quote(id)}.");
        }
        if (decided != 1)
        {
            return AgentError.Conflict("already_decided", approval.Status == ApprovalStatuses.Pending
                ? $"The approval '{id}' expired at {approval.ExpiresAt:u}; the agent must call the tool again."
                : $"The approval '{id}' was already decided ({approval.Status}).");
        }
        securityLog.Record(ownerId, approve ? SecurityEventTypes.ToolCallApproved : SecurityEventTypes.ToolCallDenied, id, approval.Caller,
            $"server={approval.ServerId} tool={approval.ToolName}" + (grant is null ? "" : $" grant={grant}"));
        audit.Record(ownerId, approval.ServerId, approval.ToolName, null, approval.Caller,
            approve ? $"approval_granted_{grant}" : "approval_denied", TimeSpan.Zero);
        return approval;
    }

    /// <summary>The owner's approvals: pending ones first, then the latest decided.</summary>
    /// <summary>Approvals waiting for a person, across accounts (the <c>latchkey.approvals.pending</c> gauge).</summary>
    public Task<int> CountPendingAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        return db.McpApprovals.CountAsync(a => a.Status == ApprovalStatuses.Pending && a.ExpiresAt > now, cancellationToken);
    }

    public async Task<List<ToolCallApproval>> ListAsync(string ownerId, bool pendingOnly, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var query = db.McpApprovals.AsNoTracking().Where(a => a.OwnerId == ownerId);
        query = pendingOnly ? query.Where(a => a.Status == ApprovalStatuses.Pending && a.ExpiresAt > now) : query;
        var list = await query.OrderByDescending(a => a.CreatedAt).Take(200).ToListAsync(cancellationToken);
        foreach (var approval in list.Where(a => a.Status == ApprovalStatuses.Pending && a.ExpiresAt <= now))
        {
            approval.Status = ApprovalStatuses.Expired;
        }
        return [.. list.OrderBy(a => a.Status == ApprovalStatuses.Pending ? 0 : 1).ThenByDescending(a => a.CreatedAt)];
    }

    public static ApprovalView View(ToolCallApproval approval, string baseUrl) => new(
        approval.Id, approval.ServerId, approval.ServerName, approval.ToolName,
        approval.ArgumentsJson is null ? null : JsonDocument.Parse(approval.ArgumentsJson).RootElement.Clone(),
        approval.Caller, approval.SessionId, approval.Status, approval.Grant, approval.CreatedAt, approval.ExpiresAt,
        approval.DecidedAt, approval.GrantExpiresAt, ApprovalUrl(baseUrl, approval.Id));

    /// <summary>What a webhook hears of a held call: which server, tool and agent, and where to decide.</summary>
    private static Dictionary<string, object?> Announcement(ToolCallApproval approval, string baseUrl) => new()
    {
        ["approval_id"] = approval.Id,
        ["server_id"] = approval.ServerId,
        ["server_name"] = approval.ServerName,
        ["tool"] = approval.ToolName,
        ["caller"] = approval.Caller,
        ["expires_at"] = approval.ExpiresAt,
        ["approval_url"] = ApprovalUrl(baseUrl, approval.Id),
    };

    /// <summary>
    /// Tells the server's webhook that a call waits (best effort, off the request path): which
    /// server, tool and agent, and where to decide. Not the arguments, which may hold data the
    /// webhook's receiver should not see; the page shows them.
    /// </summary>
    private async Task AnnounceAsync(string webhook, ToolCallApproval approval, string baseUrl)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var body = new Dictionary<string, object?> { ["type"] = "tool_call_approval_requested" };
            foreach (var (name, value) in Announcement(approval, baseUrl))
            {
                body[name] = value;
            }
            using var request = new HttpRequestMessage(HttpMethod.Post, webhook) { Content = JsonContent.Create(body) };
            // Only the status matters: the answer's body is never read.
            using var response = await httpClients.CreateClient(WebhookClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            if (!response.IsSuccessStatusCode)
            {
                LogWebhookFailed(logger, approval.ServerId, $"answered {(int)response.StatusCode}");
            }
        }
        catch (Exception exception) when (exception is HttpRequestException or OperationCanceledException or InvalidOperationException)
        {
            LogWebhookFailed(logger, approval.ServerId, exception.GetType().Name);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "MCP server {ServerId}: the approval webhook failed: {Reason}")]
    private static partial void LogWebhookFailed(ILogger logger, string serverId, string reason);
}

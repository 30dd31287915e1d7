using System.Text.Json;
using Latchkey.Common;
using Latchkey.Features.Mcp.Approvals;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Features.Mcp.Pages;

/// <summary>
/// The owner's held tool calls: what each is (server, tool, arguments, agent, time left), and the
/// decision: approve once, for the session or the hour, or deny. The same decisions as
/// <c>POST /mcp/approvals/{id}</c>.
/// </summary>
[Authorize]
public sealed class ApprovalsModel(ToolCallApprovals approvals, TimeProvider time, Latchkey.Storage.LatchkeyDbContext db) : PageModel
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public IReadOnlyList<ToolCallApproval> Pending { get; private set; } = [];
    public IReadOnlyList<ToolCallApproval> Decided { get; private set; } = [];
    public DateTimeOffset Now { get; private set; }

    /// <summary>What people call the agents: API key names and app names, by key id or client id.</summary>
    public IReadOnlyDictionary<string, string> CallerNames { get; private set; } = new Dictionary<string, string>();

    public string CallerName(string caller) => CallerNames.TryGetValue(caller, out var name) ? name : caller;

    [TempData]
    public string? Notice { get; set; }

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        Now = time.GetUtcNow();
        var all = await approvals.ListAsync(User.UserId(), pendingOnly: false, cancellationToken);
        Pending = [.. all.Where(a => a.Status == ApprovalStatuses.Pending)];
        Decided = [.. all.Where(a => a.Status != ApprovalStatuses.Pending).Take(50)];
        var callers = all.Select(a => a.Caller).Distinct().ToList();
        var userId = User.UserId();
        var keys = await db.ApiKeys.AsNoTracking().Where(k => k.UserId == userId && callers.Contains(k.Id))
            .Select(k => new { k.Id, Name = "API key “" + k.Name + "”" }).ToListAsync(cancellationToken);
        var apps = await db.OAuthApplications.AsNoTracking().Where(a => callers.Contains(a.ClientId!))
            .Select(a => new { Id = a.ClientId!, Name = "app “" + a.DisplayName + "”" }).ToListAsync(cancellationToken);
        CallerNames = keys.Concat(apps).GroupBy(c => c.Id).ToDictionary(g => g.Key, g => g.First().Name);
    }

    public async Task<IActionResult> OnPostDecideAsync(string id, string decision, string? grant, CancellationToken cancellationToken)
    {
        var decided = await approvals.DecideAsync(User.UserId(), id, new ApprovalDecision(decision, grant), cancellationToken);
        Notice = decided.Value is { } approval
            ? $"{(approval.Status == ApprovalStatuses.Approved ? "Approved" : "Denied")}: {approval.ToolName} on {approval.ServerName}."
            : decided.Error!.Message;
        return RedirectToPage();
    }

    public static string Describe(TimeSpan left) =>
        left <= TimeSpan.Zero ? "no time" : left.TotalMinutes >= 1 ? $"{(int)left.TotalMinutes} min" : $"{(int)left.TotalSeconds} s";

    /// <summary>The arguments as indented JSON (Razor encodes them), or a note when there were none or too many to keep.</summary>
    public static string Pretty(string? arguments)
    {
        if (arguments is null)
        {
            return "(none kept)";
        }
        try
        {
            using var document = JsonDocument.Parse(arguments);
            return JsonSerializer.Serialize(document.RootElement, Indented);
        }
        catch (JsonException)
        {
            return arguments;
        }
    }

    public static string Outcome(ToolCallApproval approval) => approval.Status switch
    {
        ApprovalStatuses.Approved or ApprovalStatuses.Used => approval.Grant switch
        {
            ApprovalGrants.Session => "approved for the session",
            ApprovalGrants.Hour => "approved for an hour",
            _ => approval.Status == ApprovalStatuses.Used ? "approved once, called" : "approved once",
        },
        ApprovalStatuses.Denied => "denied",
        _ => "expired undecided",
    };
}

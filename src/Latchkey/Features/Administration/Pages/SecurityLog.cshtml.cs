using Latchkey.Features.SecurityEvents;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Latchkey.Features.Administration.Pages;

/// <summary>The security log across every account, newest first, filtered by account and event type, a page at a time.</summary>
public sealed class AdminSecurityLogModel(SecurityEventHistory history, AdminOverview overview, UserManager<Accounts.LatchkeyUser> users) : PageModel
{
    public const int PageSize = 100;

    /// <summary>An account's e-mail address, or its id (a deleted account's events are kept under its id).</summary>
    [BindProperty(SupportsGet = true)]
    public string? Account { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Type { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? After { get; set; }

    public IReadOnlyList<SecurityEvent> Events { get; private set; } = [];

    public IReadOnlyDictionary<string, string> Emails { get; private set; } = new Dictionary<string, string>();

    public string? Next { get; private set; }

    public string? Problem { get; private set; }

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        string? accountId = null;
        if (Account?.Trim() is { Length: > 0 } account)
        {
            accountId = (await users.FindByEmailAsync(account))?.Id ?? account;
        }
        if (Type is { Length: > 0 } && !SecurityEventTypes.All.Contains(Type))
        {
            Problem = $"There is no event type '{Type}'.";
            return;
        }
        SecurityEventCursor? after = SecurityEventCursor.TryDecode(After, out var cursor) ? cursor : null;
        var filter = new SecurityEventFilter(Type is { Length: > 0 } type ? [type] : [], null, null);
        var (events, next) = await history.PageAsync(accountId, filter, PageSize, after, cancellationToken);
        Events = events;
        Next = next?.Encode();
        Emails = await overview.EmailsAsync(events.Select(e => e.AccountId), cancellationToken);
    }
}

using Latchkey.Common;
using Latchkey.Features.Mcp.Policies;
using Latchkey.Features.Site;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Latchkey.Features.Mcp.Pages;

/// <summary>
/// Where the connections page's policy forms post (antiforgery-checked): set or remove a tool's
/// policy, change a server's default; then back to the connections page with what happened.
/// </summary>
[Authorize]
public sealed class ToolPoliciesModel(McpServerService servers, ToolPolicyService policies) : PageModel
{
    private const string Section = "mcp-servers";

    [TempData]
    public string? Notice { get; set; }

    public IActionResult OnGet() => Redirect(ProfileNavigation.Connections + "#" + Section);

    public async Task<IActionResult> OnPostSetAsync(string serverId, string tool, string action, string? requiredScope, CancellationToken cancellationToken)
    {
        if (await servers.FindAsync(User.UserId(), serverId, cancellationToken) is not { } server)
        {
            return NotFound();
        }
        var (policy, error) = await policies.SetAsync(server, tool?.Trim() ?? "", new ToolPolicyRequest(action, string.IsNullOrWhiteSpace(requiredScope) ? null : requiredScope.Trim(),
            server.ToolPolicies.Find(p => p.Tool == tool?.Trim())?.ArgumentRules), cancellationToken);
        Notice = policy is not null ? $"{server.Name}: {policy.Tool} is now {policy.Action.Replace('_', ' ')}." : error!.Message;
        return Back();
    }

    public async Task<IActionResult> OnPostRemoveAsync(string serverId, string tool, CancellationToken cancellationToken)
    {
        if (await servers.FindAsync(User.UserId(), serverId, cancellationToken) is not { } server)
        {
            return NotFound();
        }
        Notice = await policies.RemoveAsync(server, tool, cancellationToken)
            ? $"{server.Name}: the policy of {tool} is removed."
            : "That policy no longer exists.";
        return Back();
    }

    public async Task<IActionResult> OnPostDefaultAsync(string serverId, string action, CancellationToken cancellationToken)
    {
        if (await servers.FindAsync(User.UserId(), serverId, cancellationToken) is not { } server)
        {
            return NotFound();
        }
        var error = await servers.UpdateAsync(server, McpServerPatch.Of("default_tool_policy", action), cancellationToken);
        Notice = error?.Message ?? $"{server.Name}: tools no policy names are now {action.Replace('_', ' ')}.";
        return Back();
    }

    private RedirectResult Back() => Redirect(ProfileNavigation.Connections + "#" + Section);
}

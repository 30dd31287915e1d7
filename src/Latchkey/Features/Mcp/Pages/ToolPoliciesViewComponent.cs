using Latchkey.Common;
using Microsoft.AspNetCore.Mvc;

namespace Latchkey.Features.Mcp.Pages;

/// <summary>
/// The "MCP servers and tool policies" section of the connections page: each server's default
/// policy and per-tool policies, with forms that post to <see cref="ToolPoliciesModel"/>. A view
/// component, so that the connections page (the broker's) names it without depending on this feature.
/// </summary>
public sealed class ToolPoliciesViewComponent(McpServerService servers) : ViewComponent
{
    public async Task<IViewComponentResult> InvokeAsync() =>
        View("~/Features/Mcp/Pages/_ToolPolicies.cshtml", await servers.ListAsync(UserClaimsPrincipal.UserId(), HttpContext.RequestAborted));
}

using System.Security.Claims;
using Latchkey.Features.ExternalApi;
using Latchkey.Features.Mcp.Approvals;
using Latchkey.Features.Mcp.Policies;

namespace Latchkey.Features.Mcp.Gateway;

/// <summary>
/// Applies a tool's policy to a call before anything goes upstream: a denied tool and a broken
/// argument rule get a JSON-RPC error that names the rule; a missing scope gets the step-up
/// challenge; a tool that needs approval is held until the owner decides.
/// </summary>
public sealed class GatewayPolicy(ToolCallApprovals approvals)
{
    /// <returns>Null when the call may go upstream; otherwise the outcome to audit, the refusal written.</returns>
    internal async Task<string?> ApplyAsync(HttpContext context, GatewayRoute route, ClaimsPrincipal caller, string callerId, RelayedMessage message, string tool,
        string baseUrl, string metadataUrl)
    {
        var policy = route.Policies.For(tool);
        if (policy.Action == ToolPolicyActions.Deny)
        {
            await GatewayRefusals.ToolRefusedAsync(context, message, $"The tool '{tool}' is not available through this gateway: its policy denies it.",
                new Dictionary<string, object?> { ["error"] = "tool_denied", ["tool"] = tool });
            return "denied_by_policy";
        }
        if (policy.RequiredScope is { } scope && !caller.HasClaim(ExternalApiClaims.Scope, scope))
        {
            await GatewayAuthentication.InsufficientScopeAsync(context, metadataUrl, tool, scope);
            return "insufficient_scope";
        }
        if (policy.BrokenRule(message.Arguments) is { } rule)
        {
            await GatewayRefusals.ToolRefusedAsync(context, message, $"The call to '{tool}' was refused by its policy: {rule.Describe()}.",
                new Dictionary<string, object?> { ["error"] = "argument_rule", ["tool"] = tool, ["argument"] = rule.Argument, ["pattern"] = rule.Pattern });
            return "refused_by_argument_rule";
        }
        if (policy.Action != ToolPolicyActions.RequireApproval)
        {
            return null;
        }

        var sessionId = context.Request.Headers["Mcp-Session-Id"].ToString() is { Length: > 0 } session ? session : null;
        var (result, approvalId) = await approvals.HoldAsync(route, callerId, sessionId, tool, message.Arguments, baseUrl, context.RequestAborted);
        var url = ToolCallApprovals.ApprovalUrl(baseUrl, approvalId);
        switch (result)
        {
            case HoldResult.Proceed:
                return null;
            case HoldResult.Denied:
                await GatewayRefusals.ToolErrorAsync(context, message, $"The owner denied this call to '{tool}'. Do not retry it unless asked to.",
                    new Dictionary<string, object?> { ["error"] = "approval_denied", ["approval_id"] = approvalId });
                return "approval_denied";
            default:
                await GatewayRefusals.ToolErrorAsync(context, message,
                    $"This call to '{tool}' waits for its owner's approval at {url}. Once it is approved, call the tool again with the same arguments; it will go through without asking again.",
                    new Dictionary<string, object?> { ["error"] = "approval_pending", ["approval_id"] = approvalId, ["approval_url"] = url });
                return "approval_pending";
        }
    }
}

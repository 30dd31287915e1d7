using System.Security.Claims;
using Latchkey.Common;
using Latchkey.Features.AgentApi;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Latchkey.Features.Mcp.Approvals;

/// <summary><c>/mcp/approvals</c>: the owner's held tool calls, and their decisions (API key; the approvals page is the same for a browser).</summary>
internal static class ApprovalEndpoints
{
    public static void MapApprovalEndpoints(this IEndpointRouteBuilder app)
    {
        var approvals = app.MapAgentApi("/mcp/approvals", "MCP approvals");

        approvals.MapGet("/", async Task<Results<AgentOk<ApprovalList>, AgentError>> (string? status, HttpContext context, ClaimsPrincipal caller, ToolCallApprovals service) =>
            {
                if (status is not (null or "pending" or "all"))
                {
                    return AgentError.BadRequest("status must be pending or all.");
                }
                var baseUrl = ServerAddress.Base(context);
                var list = await service.ListAsync(caller.UserId(), status == "pending", context.RequestAborted);
                return AgentResults.Ok(new ApprovalList(list.ConvertAll(a => ToolCallApprovals.View(a, baseUrl))));
            })
            .WithSummary("Your tool calls held for approval (status=pending), or with the latest decisions (status=all, the default)");
        approvals.MapPost("/{id}", async Task<Results<AgentOk<ApprovalView>, AgentError>> (string id, AgentBody<ApprovalDecision> body, HttpContext context, ClaimsPrincipal caller, ToolCallApprovals service) =>
                (await service.DecideAsync(caller.UserId(), id, body.Value, context.RequestAborted)).ToOk(a => ToolCallApprovals.View(a, ServerAddress.Base(context))))
            .WithSummary("Decide a held call: decision approve (grant once, session or hour) or deny; a decision is taken once");
    }
}

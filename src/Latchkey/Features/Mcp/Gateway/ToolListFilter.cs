using System.Security.Claims;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Latchkey.Features.ExternalApi;
using Latchkey.Features.Mcp.Policies;

namespace Latchkey.Features.Mcp.Gateway;

/// <summary>
/// Rewrites the upstream's answer to <c>tools/list</c> by the server's policies, for one caller:
/// denied tools are left out; a tool whose required scope the caller lacks stays listed, marked in
/// its description and <c>_meta</c> (calling it brings the step-up challenge that gets the scope);
/// a tool that waits for approval says so. The answer may be JSON or server-sent events.
/// </summary>
internal sealed class ToolListFilter(ToolPolicySet policies, ClaimsPrincipal caller)
{
    public const string PolicyMeta = "latchkey/policy";
    public const string RequiredScopeMeta = "latchkey/required_scope";

    /// <summary>The largest answer that is rewritten; a larger one is refused rather than passed on unfiltered.</summary>
    public const int MaxAnswerBytes = 16 << 20;

    public static ToolListFilter? For(GatewayRoute route, ClaimsPrincipal caller, RelayedMessage message) =>
        !route.Policies.IsOpen && message.Method == "tools/list" ? new ToolListFilter(route.Policies, caller) : null;

    /// <summary>The answer with its tool list filtered; events or messages without a tool list pass unchanged.</summary>
    public byte[] Rewrite(byte[] answer, bool serverSentEvents) =>
        serverSentEvents ? RewriteEvents(answer) : (RewriteMessage(Encoding.UTF8.GetString(answer)) is { } json ? Encoding.UTF8.GetBytes(json) : answer);

    private byte[] RewriteEvents(byte[] answer)
    {
        var output = new StringBuilder();
        var lines = Encoding.UTF8.GetString(answer).Replace("\r\n", "\n").Split('\n');
        var block = new List<string>();
        foreach (var line in lines.Append(""))
        {
            if (line.Length > 0)
            {
                block.Add(line);
                continue;
            }
            if (block.Count > 0)
            {
                var data = string.Join('\n', block.Where(l => l.StartsWith("data:", StringComparison.Ordinal)).Select(l => l[5..].TrimStart(' ')));
                var rewritten = data.Length > 0 ? RewriteMessage(data) : null;
                foreach (var kept in block.Where(l => rewritten is null || !l.StartsWith("data:", StringComparison.Ordinal)))
                {
                    output.Append(kept).Append('\n');
                }
                if (rewritten is not null)
                {
                    output.Append("data: ").Append(rewritten).Append('\n');
                }
                output.Append('\n');
                block.Clear();
            }
        }
        return Encoding.UTF8.GetBytes(output.ToString());
    }

    /// <summary>The message with its <c>result.tools</c> filtered, or null when it holds no tool list.</summary>
    private string? RewriteMessage(string json)
    {
        JsonNode? message;
        try
        {
            message = JsonNode.Parse(json);
        }
        catch (Exception exception) when (exception is JsonException or InvalidOperationException)
        {
            return null;
        }
        if (message?["result"]?["tools"] is not JsonArray tools)
        {
            return null;
        }
        Filter(tools);
        return message.ToJsonString();
    }

    /// <summary>Leaves out denied tools and marks the others by policy, in place.</summary>
    public void Filter(JsonArray tools)
    {
        foreach (var tool in tools.ToList())
        {
            string? name;
            try
            {
                name = tool?["name"] is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;
            }
            catch (InvalidOperationException)
            {
                name = null;
            }
            if (tool is not JsonObject entry || name is null)
            {
                continue;
            }
            var policy = policies.For(name);
            if (policy.Action == ToolPolicyActions.Deny)
            {
                tools.Remove(tool);
                continue;
            }
            var meta = entry["_meta"] as JsonObject ?? new JsonObject();
            meta[PolicyMeta] = policy.Action;
            var notes = new List<string>();
            if (policy.Action == ToolPolicyActions.RequireApproval)
            {
                notes.Add("Each call waits for its owner's approval.");
            }
            if (policy.RequiredScope is { } scope && !caller.HasClaim(ExternalApiClaims.Scope, scope))
            {
                meta[RequiredScopeMeta] = scope;
                notes.Add($"Needs the scope {scope}, which this agent's access does not hold: a call asks for it (step-up).");
            }
            entry["_meta"] = meta;
            if (notes.Count > 0)
            {
                var description = entry["description"] is JsonValue d && d.TryGetValue<string>(out var existing) ? existing : "";
                entry["description"] = (description + " [" + string.Join(' ', notes) + "]").TrimStart();
            }
        }
    }
}

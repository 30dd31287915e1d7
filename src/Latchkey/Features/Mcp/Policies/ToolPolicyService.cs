using System.Text.Json;
using System.Text.RegularExpressions;
using Latchkey.Common;
using Latchkey.Features.AgentApi;
using Latchkey.Features.Scopes;

namespace Latchkey.Features.Mcp.Policies;

/// <summary>What a caller sends to set a tool's policy.</summary>
public sealed record ToolPolicyRequest(string? Action, string? RequiredScope, IReadOnlyList<ArgumentRule>? ArgumentRules);

public sealed record ToolPolicyView(string Tool, string Action, string? RequiredScope, IReadOnlyList<ArgumentRule> ArgumentRules, DateTimeOffset UpdatedAt);

public sealed record ToolPolicyList(string ServerId, string DefaultPolicy, IReadOnlyList<ToolPolicyView> Policies);

/// <summary>Setting, listing and removing the per-tool policies of a registered MCP server.</summary>
public sealed partial class ToolPolicyService(McpServerService servers, TimeProvider time, ScopeCatalog scopes)
{
    public const int MaxArgumentRules = 20;
    public const int MaxPatternLength = 500;

    public static ToolPolicyView View(McpToolPolicy policy) =>
        new(policy.Tool, policy.Action, policy.RequiredScope, policy.ArgumentRules, policy.UpdatedAt);

    public static ToolPolicyList List(McpServer server) =>
        new(server.Id, server.DefaultToolPolicy, [.. server.ToolPolicies.OrderBy(p => p.Tool, StringComparer.Ordinal).Select(View)]);

    /// <summary>A tool name or pattern a policy may name: letters, digits, <c>_ - .</c> and <c>*</c>, at most 128.</summary>
    public static bool IsToolOrPattern(string tool) => ToolOrPatternShape().IsMatch(tool);

    public async Task<Outcome<McpToolPolicy>> SetAsync(McpServer server, string tool, ToolPolicyRequest request, CancellationToken cancellationToken)
    {
        if (!IsToolOrPattern(tool))
        {
            return AgentError.BadRequest($"{InputEcho.Quote(tool)} is neither a tool name nor a pattern: 1 to 128 letters, digits, '_', '-', '.' or '*' (any run of characters).");
        }
        if (!ToolPolicyActions.IsKnown(request.Action))
        {
            return AgentError.BadRequest($"action must be one of {string.Join(", ", ToolPolicyActions.All)}.");
        }
        if (request.RequiredScope is { } scope && !scopes.Contains(scope))
        {
            return AgentError.BadRequest($"required_scope {InputEcho.Quote(scope)} is not in this server's scope catalog.");
        }
        if (CheckRules(request.ArgumentRules) is { } ruleError)
        {
            return ruleError;
        }
        var now = time.GetUtcNow();
        var policy = server.ToolPolicies.Find(p => p.Tool == tool);
        if (policy is null)
        {
            policy = new McpToolPolicy { ServerId = server.Id, Tool = tool, Action = request.Action! };
            server.ToolPolicies.Add(policy);
        }
        policy.Action = request.Action!;
        policy.RequiredScope = request.RequiredScope;
        policy.ArgumentRulesJson = request.ArgumentRules is { Count: > 0 } rules ? JsonSerializer.Serialize(rules, ArgumentRule.Json) : null;
        policy.UpdatedAt = now;
        // The server's cached gateway route holds its policies; touching the server says they changed.
        server.UpdatedAt = now;
        return await servers.SaveAsync(server.Id, cancellationToken) is { } conflict ? conflict : policy;
    }

    public async Task<bool> RemoveAsync(McpServer server, string tool, CancellationToken cancellationToken)
    {
        var policy = server.ToolPolicies.Find(p => p.Tool == tool);
        if (policy is null)
        {
            return false;
        }
        server.ToolPolicies.Remove(policy);
        server.UpdatedAt = time.GetUtcNow();
        await servers.SaveAsync(server.Id, cancellationToken);
        return true;
    }

    private static AgentError? CheckRules(IReadOnlyList<ArgumentRule>? rules)
    {
        if (rules is null)
        {
            return null;
        }
        if (rules.Count > MaxArgumentRules)
        {
            return AgentError.BadRequest($"argument_rules holds at most {MaxArgumentRules} rules.");
        }
        foreach (var rule in rules)
        {
            if (rule is null || string.IsNullOrWhiteSpace(rule.Argument) || rule.Argument.Length > 128)
            {
                return AgentError.BadRequest("Each argument rule needs an argument (the argument's name, at most 128 characters) and a pattern.");
            }
            if (string.IsNullOrEmpty(rule.Pattern) || rule.Pattern.Length > MaxPatternLength)
            {
                return AgentError.BadRequest($"The pattern for {InputEcho.Quote(rule.Argument)} must be a regular expression of 1 to {MaxPatternLength} characters.");
            }
            try
            {
                rule.Compile();
            }
            catch (ArgumentException exception)
            {
                return AgentError.BadRequest($"The pattern for {InputEcho.Quote(rule.Argument)} is not a regular expression: {exception.Message}");
            }
        }
        return null;
    }

    [GeneratedRegex("^[A-Za-z0-9_.*-]{1,128}$")]
    private static partial Regex ToolOrPatternShape();
}

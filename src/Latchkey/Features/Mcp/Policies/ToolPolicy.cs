using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Latchkey.Features.Mcp.Policies;

/// <summary>What the gateway does with a call to a tool.</summary>
public static class ToolPolicyActions
{
    public const string Allow = "allow";
    public const string Deny = "deny";
    public const string RequireApproval = "require_approval";

    public static readonly IReadOnlyList<string> All = [Allow, Deny, RequireApproval];

    public static bool IsKnown(string? action) => action is Allow or Deny or RequireApproval;
}

/// <summary>
/// The policy of one tool, or of every tool whose name matches a pattern (<c>delete_*</c>), of a
/// registered MCP server: allow, deny, or hold for the owner's approval; optionally a scope the
/// caller's token must hold, and rules its arguments must keep.
/// </summary>
public sealed class McpToolPolicy
{
    public required string ServerId { get; init; }

    /// <summary>A tool name, or a pattern in which <c>*</c> stands for any run of characters.</summary>
    public required string Tool { get; init; }

    public required string Action { get; set; }
    public string? RequiredScope { get; set; }

    /// <summary>The argument rules as JSON (<see cref="ArgumentRule"/>s).</summary>
    public string? ArgumentRulesJson { get; set; }

    public DateTimeOffset UpdatedAt { get; set; }

    public IReadOnlyList<ArgumentRule> ArgumentRules =>
        ArgumentRulesJson is null ? [] : JsonSerializer.Deserialize<List<ArgumentRule>>(ArgumentRulesJson, ArgumentRule.Json) ?? [];
}

/// <summary>An argument the call must carry, as a string (or number) matching <see cref="Pattern"/> whole (a .NET regular expression).</summary>
public sealed record ArgumentRule(string Argument, string Pattern)
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>How long one rule may take on one value: a pattern that backtracks without end refuses the call instead.</summary>
    public static readonly TimeSpan MatchTimeout = TimeSpan.FromMilliseconds(50);

    public Regex Compile() => new($"^(?:{Pattern})$", RegexOptions.CultureInvariant, MatchTimeout);

    public string Describe() => $"the argument '{Argument}' must match {Pattern}";
}

/// <summary>A tool's policy as the gateway applies it, its rules compiled once.</summary>
public sealed record EffectiveToolPolicy(string Action, string? RequiredScope, IReadOnlyList<(ArgumentRule Rule, Regex Regex)> Rules)
{
    public static readonly EffectiveToolPolicy AllowAll = new(ToolPolicyActions.Allow, null, []);

    public static EffectiveToolPolicy From(McpToolPolicy policy) =>
        new(policy.Action, policy.RequiredScope, [.. policy.ArgumentRules.Select(rule => (rule, rule.Compile()))]);

    /// <summary>The first rule the arguments break, or null. A value that takes too long to match breaks its rule.</summary>
    public ArgumentRule? BrokenRule(JsonElement? arguments)
    {
        foreach (var (rule, regex) in Rules)
        {
            if (arguments is not { ValueKind: JsonValueKind.Object } values || !values.TryGetProperty(rule.Argument, out var value))
            {
                return rule;
            }
            try
            {
                var text = value.ValueKind switch
                {
                    JsonValueKind.String => value.GetString(),
                    JsonValueKind.Number => value.GetRawText(),
                    _ => null,
                };
                if (text is null || !regex.IsMatch(text))
                {
                    return rule;
                }
            }
            catch (RegexMatchTimeoutException)
            {
                return rule;
            }
            catch (InvalidOperationException)
            {
                // A string with a lone surrogate, which no pattern can judge.
                return rule;
            }
        }
        return null;
    }
}

/// <summary>
/// The policies of one server, resolved per tool: the tool's own policy, else the most specific
/// pattern that matches (the one with the most characters besides <c>*</c>; equal ones by name),
/// else the server's default.
/// </summary>
public sealed class ToolPolicySet
{
    private readonly Dictionary<string, EffectiveToolPolicy> _exact;
    private readonly (Regex Pattern, EffectiveToolPolicy Policy)[] _patterns;
    private readonly EffectiveToolPolicy _default;

    public ToolPolicySet(string defaultAction, IEnumerable<McpToolPolicy> policies)
    {
        var all = policies.ToList();
        _exact = all.Where(p => !IsPattern(p.Tool)).ToDictionary(p => p.Tool, EffectiveToolPolicy.From, StringComparer.Ordinal);
        _patterns = all.Where(p => IsPattern(p.Tool))
            .OrderByDescending(p => p.Tool.Count(c => c != '*')).ThenBy(p => p.Tool, StringComparer.Ordinal)
            .Select(p => (PatternRegex(p.Tool), EffectiveToolPolicy.From(p))).ToArray();
        _default = defaultAction == ToolPolicyActions.Allow ? EffectiveToolPolicy.AllowAll : new EffectiveToolPolicy(defaultAction, null, []);
        IsOpen = defaultAction == ToolPolicyActions.Allow && all.All(p => p.Action == ToolPolicyActions.Allow && p.RequiredScope is null && p.ArgumentRulesJson is null);
    }

    /// <summary>True when every tool is allowed without conditions: the gateway then relays tool lists untouched.</summary>
    public bool IsOpen { get; }

    public EffectiveToolPolicy For(string tool)
    {
        if (_exact.TryGetValue(tool, out var exact))
        {
            return exact;
        }
        foreach (var (pattern, policy) in _patterns)
        {
            if (pattern.IsMatch(tool))
            {
                return policy;
            }
        }
        return _default;
    }

    public static bool IsPattern(string tool) => tool.Contains('*');

    private static Regex PatternRegex(string pattern) =>
        new("^" + string.Join(".*", pattern.Split('*').Select(Regex.Escape)) + "$", RegexOptions.CultureInvariant);
}

internal sealed class McpToolPolicyConfiguration : IEntityTypeConfiguration<McpToolPolicy>
{
    public void Configure(EntityTypeBuilder<McpToolPolicy> policy)
    {
        policy.ToTable("mcp_tool_policies");
        policy.HasKey(p => new { p.ServerId, p.Tool });
        policy.Property(p => p.ServerId).HasMaxLength(40);
        policy.Property(p => p.Tool).HasMaxLength(128);
        policy.Property(p => p.Action).HasMaxLength(20);
        policy.Property(p => p.RequiredScope).HasMaxLength(100);
        policy.Property(p => p.ArgumentRulesJson).HasMaxLength(8000);
        policy.Ignore(p => p.ArgumentRules);
        policy.HasOne<McpServer>().WithMany(s => s.ToolPolicies).HasForeignKey(p => p.ServerId).OnDelete(DeleteBehavior.Cascade);
    }
}

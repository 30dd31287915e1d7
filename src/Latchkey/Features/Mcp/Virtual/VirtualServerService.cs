using System.Text;
using System.Text.RegularExpressions;
using Latchkey.Cluster;
using Latchkey.Common;
using Latchkey.Features.AgentApi;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;

namespace Latchkey.Features.Mcp.Virtual;

/// <summary>What a caller sends to create or replace a virtual server: a name and its members (server ids, optional prefixes).</summary>
public sealed record VirtualServerRequest(string? Name, IReadOnlyList<VirtualMemberRequest>? Members);

public sealed record VirtualMemberRequest(string? ServerId, string? Prefix);

public sealed record VirtualMemberView(string ServerId, string ServerName, string Prefix);

public sealed record VirtualServerView(string Id, string Name, string GatewayUrl, IReadOnlyList<VirtualMemberView> Members, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

public sealed record VirtualServerList(IReadOnlyList<VirtualServerView> VirtualServers);

/// <summary>What the virtual gateway needs: the owner, and each member's prefix and server id (cached, invalidated by any change).</summary>
public sealed record VirtualRoute(string Id, string OwnerId, string Name, IReadOnlyList<(string Prefix, string ServerId)> Members);

/// <summary>Creating, changing and removing virtual servers, and resolving their tools' names.</summary>
public sealed partial class VirtualServerService(LatchkeyDbContext db, TimeProvider time, SnapshotCache<VirtualRoute> routes)
{
    public const string PathPrefix = "/mcp/virtual-servers";

    /// <summary>Between a member's prefix and its tool's name: <c>github__create_issue</c>.</summary>
    public const string Separator = "__";

    public const int MaxMembers = 20;

    public static string GatewayUrl(string baseUrl, string id) => $"{baseUrl}{PathPrefix}/{Uri.EscapeDataString(id)}{McpServerService.GatewayPathSuffix}";

    public static VirtualServerView View(McpVirtualServer server, IReadOnlyDictionary<string, string> serverNames, string baseUrl) => new(
        server.Id, server.Name, GatewayUrl(baseUrl, server.Id),
        [.. server.Members.OrderBy(m => m.Prefix, StringComparer.Ordinal).Select(m => new VirtualMemberView(m.ServerId, serverNames.GetValueOrDefault(m.ServerId, m.ServerId), m.Prefix))],
        server.CreatedAt, server.UpdatedAt);

    /// <summary>The names of the owner's registered servers, for views.</summary>
    public async Task<Dictionary<string, string>> ServerNamesAsync(string ownerId, CancellationToken cancellationToken) =>
        await db.McpServers.AsNoTracking().Where(s => s.OwnerId == ownerId).ToDictionaryAsync(s => s.Id, s => s.Name, cancellationToken);

    public Task<List<McpVirtualServer>> ListAsync(string ownerId, CancellationToken cancellationToken) =>
        db.McpVirtualServers.AsNoTracking().Include(s => s.Members).Where(s => s.OwnerId == ownerId)
            .OrderBy(s => s.CreatedAt).ThenBy(s => s.Id).ToListAsync(cancellationToken);

    public Task<McpVirtualServer?> FindAsync(string ownerId, string id, CancellationToken cancellationToken) =>
        db.McpVirtualServers.Include(s => s.Members).FirstOrDefaultAsync(s => s.Id == id && s.OwnerId == ownerId, cancellationToken);

    public async Task<Outcome<McpVirtualServer>> CreateAsync(string ownerId, VirtualServerRequest request, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var server = new McpVirtualServer
        {
            Id = Identifiers.NewHex("vmcp"),
            OwnerId = ownerId,
            Name = "",
            CreatedAt = now,
            UpdatedAt = now,
        };
        if (await ApplyAsync(server, request, cancellationToken) is { } error)
        {
            return error;
        }
        db.McpVirtualServers.Add(server);
        await db.SaveChangesAsync(cancellationToken);
        return server;
    }

    /// <summary>Replaces the name and members.</summary>
    public async Task<Outcome<McpVirtualServer>> ReplaceAsync(McpVirtualServer server, VirtualServerRequest request, CancellationToken cancellationToken)
    {
        if (await ApplyAsync(server, request, cancellationToken) is { } error)
        {
            return error;
        }
        server.UpdatedAt = time.GetUtcNow();
        try
        {
            await db.SaveChangesAsync(cancellationToken);
            return server;
        }
        catch (DbUpdateException)
        {
            db.ChangeTracker.Clear();
            return AgentError.Conflict("concurrent_change", $"The virtual server '{server.Id}' was changed or removed by another request at the same time; read it again and retry.");
        }
    }

    public async Task DeleteAsync(McpVirtualServer server, CancellationToken cancellationToken)
    {
        db.McpVirtualServers.Remove(server);
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateConcurrencyException)
        {
            // Removed by another request at the same time: gone either way.
        }
    }

    /// <summary>The gateway's view of a virtual server, whoever owns it.</summary>
    public ValueTask<VirtualRoute?> RouteAsync(string id, CancellationToken cancellationToken) =>
        routes.GetOrLoadAsync(id, (db, id), static async (state, ct) =>
        {
            var server = await state.db.McpVirtualServers.AsNoTracking().Include(s => s.Members).FirstOrDefaultAsync(s => s.Id == state.id, ct);
            return server is null ? null : new VirtualRoute(server.Id, server.OwnerId, server.Name,
                [.. server.Members.OrderBy(m => m.Prefix, StringComparer.Ordinal).Select(m => (m.Prefix, m.ServerId))]);
        }, cancellationToken);

    /// <summary>The member a prefixed tool name belongs to, and the tool's own name there.</summary>
    public static (string ServerId, string Tool)? Resolve(VirtualRoute route, string prefixedTool)
    {
        var at = prefixedTool.IndexOf(Separator, StringComparison.Ordinal);
        if (at <= 0)
        {
            return null;
        }
        var prefix = prefixedTool[..at];
        foreach (var (memberPrefix, serverId) in route.Members)
        {
            if (memberPrefix == prefix)
            {
                return (serverId, prefixedTool[(at + Separator.Length)..]);
            }
        }
        return null;
    }

    private async Task<AgentError?> ApplyAsync(McpVirtualServer server, VirtualServerRequest request, CancellationToken cancellationToken)
    {
        var name = request.Name?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > 200)
        {
            return AgentError.BadRequest("name is required (at most 200 characters).");
        }
        if (request.Members is not { Count: > 0 } members || members.Count > MaxMembers)
        {
            return AgentError.BadRequest($"members lists 1 to {MaxMembers} of your MCP servers: [{{\"server_id\": \"mcp_…\", \"prefix\": \"github\"}}].");
        }
        var ids = members.Select(m => m?.ServerId).ToList();
        if (ids.Any(string.IsNullOrWhiteSpace) || ids.Distinct().Count() != ids.Count)
        {
            return AgentError.BadRequest("Each member needs a server_id, and a server may be a member once.");
        }
        var owned = await db.McpServers.AsNoTracking().Where(s => s.OwnerId == server.OwnerId && ids.Contains(s.Id))
            .ToDictionaryAsync(s => s.Id, s => s.Name, cancellationToken);
        var chosen = new List<McpVirtualMember>();
        foreach (var member in members)
        {
            if (!owned.TryGetValue(member.ServerId!, out var serverName))
            {
                return AgentError.NotFound("mcp_server", $"You have no MCP server {InputEcho.Quote(member.ServerId!)}.");
            }
            var prefix = member.Prefix?.Trim() ?? Slug(serverName, member.ServerId!);
            if (!PrefixPattern().IsMatch(prefix) || prefix.Contains(Separator, StringComparison.Ordinal))
            {
                return AgentError.BadRequest($"The prefix {InputEcho.Quote(prefix)} must be 1 to 40 letters, digits, '-' or '_' (not '{Separator}', which separates it from the tool's name).");
            }
            if (chosen.Any(c => c.Prefix == prefix))
            {
                return AgentError.BadRequest($"Two members would share the prefix {InputEcho.Quote(prefix)}; give one of them another prefix.");
            }
            chosen.Add(new McpVirtualMember { VirtualServerId = server.Id, ServerId = member.ServerId!, Prefix = prefix });
        }
        server.Name = name;
        server.Members.RemoveAll(existing => !chosen.Any(c => c.ServerId == existing.ServerId));
        foreach (var member in chosen)
        {
            if (server.Members.Find(m => m.ServerId == member.ServerId) is { } kept)
            {
                kept.Prefix = member.Prefix;
            }
            else
            {
                server.Members.Add(member);
            }
        }
        return null;
    }

    /// <summary>A server's name as a prefix: lower case, runs of other characters as one '-'; the id when nothing is left.</summary>
    private static string Slug(string name, string fallback)
    {
        var slug = new StringBuilder();
        foreach (var c in name.ToLowerInvariant())
        {
            if (char.IsAsciiLetterOrDigit(c))
            {
                slug.Append(c);
            }
            else if (slug.Length > 0 && slug[^1] != '-')
            {
                slug.Append('-');
            }
        }
        var text = slug.ToString().Trim('-');
        return text.Length == 0 ? fallback : text.Length > 40 ? text[..40].TrimEnd('-') : text;
    }

    [GeneratedRegex("^[A-Za-z0-9_-]{1,40}$")]
    private static partial Regex PrefixPattern();
}

using System.Collections.Frozen;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Latchkey.Cluster;
using Latchkey.Common;
using Latchkey.Features.AgentApi;
using Latchkey.Features.Mcp.Policies;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Mcp;

/// <summary>What a caller sends to register an MCP server.</summary>
public sealed record McpServerRequest(string? Name, string? Url, string? DefaultCredentialId, string? DefaultHeader);

/// <summary>A partial update: the fields present are changed; a null value removes an optional one.</summary>
public sealed class McpServerPatch
{
    [JsonExtensionData]
    public Dictionary<string, JsonElement> Fields { get; set; } = [];

    /// <summary>A patch of one string field, as a page form sends it.</summary>
    public static McpServerPatch Of(string field, string? value) => new() { Fields = { [field] = JsonSerializer.SerializeToElement(value) } };
}

/// <summary>What a caller sends to map a credential to a tool.</summary>
public sealed record ToolCredentialRequest(string? CredentialId, string? Header);

/// <summary>A credential as presented upstream: <c>Authorization: Bearer</c>, or the bare token in another header.</summary>
public sealed record CredentialBindingView(string CredentialId, string Header);

public sealed record ToolMappingView(string Tool, string CredentialId, string Header, DateTimeOffset UpdatedAt);

public sealed record McpServerView(
    string Id, string Name, string Url, string GatewayUrl, CredentialBindingView? DefaultCredential,
    IReadOnlyList<ToolMappingView> ToolMappings, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt,
    string DefaultToolPolicy, IReadOnlyList<ToolPolicyView> ToolPolicies, string? ApprovalWebhookUrl);

/// <summary>
/// Which credential goes upstream, and how. A null header means the credential's own form (for
/// OAuth tokens <c>Authorization: Bearer</c>; for API keys, basic and header credentials their
/// provider's headers); a named header carries the bare token or key.
/// </summary>
public sealed record CredentialBinding(string CredentialId, string? Header)
{
    public string HeaderName => Header ?? McpServerService.AuthorizationHeader;

    /// <summary>The headers a call carries for this binding.</summary>
    public IEnumerable<KeyValuePair<string, string>> Headers(Broker.Credentials.AccessTokenResponse credential) =>
        Header is null ? credential.Headers : [new(Header, credential.AccessToken)];

    public CredentialBindingView View() => new(CredentialId, HeaderName);
}

/// <summary>What the gateway needs to relay a request: cached per server, invalidated by any change to servers or mappings.</summary>
public sealed record GatewayRoute(string ServerId, string OwnerId, string Name, Uri Upstream, CredentialBinding? Default,
    FrozenDictionary<string, CredentialBinding> Tools, ToolPolicySet Policies, string? ApprovalWebhookUrl = null)
{
    public CredentialBinding? For(string? tool) => tool is not null && Tools.TryGetValue(tool, out var mapped) ? mapped : Default;
}

/// <summary>Registering MCP servers and mapping stored credentials to their tools.</summary>
public sealed partial class McpServerService(
    LatchkeyDbContext db, IOptions<McpOptions> options, TimeProvider time, SnapshotCache<GatewayRoute> routes, OutboundAddressGuard guard)
{
    public const string AuthorizationHeader = "Authorization";
    public const string GatewayPathSuffix = "/mcp";

    // Headers the gateway sets or that carry the protocol itself; a credential may not take their place.
    private static readonly FrozenSet<string> ReservedHeaders = new[]
    {
        "Host", "Content-Length", "Content-Type", "Content-Encoding", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "TE",
        "Trailer", "Accept", "Accept-Encoding", "Cookie", "Mcp-Session-Id", "Mcp-Protocol-Version", "Mcp-Method", "Mcp-Name", "Last-Event-ID",
        "X-API-Key", "Proxy-Authorization", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
    }.ToFrozenSet(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Whether a path's id could name a server (<c>mcp_</c> and 16 hex digits; some slack for other
    /// forms). One that cannot is answered 404 before any challenge or metadata repeats it in a URL.
    /// </summary>
    public static bool CouldBeServerId(string id) => id.Length <= 64;

    /// <summary>The id is escaped: it may come from a request path (any text), and the URL goes into headers.</summary>
    public static string GatewayUrl(string baseUrl, string serverId) => $"{baseUrl}/mcp/servers/{Uri.EscapeDataString(serverId)}{GatewayPathSuffix}";

    public static McpServerView View(McpServer server, string baseUrl) => new(
        server.Id, server.Name, server.UpstreamUrl, GatewayUrl(baseUrl, server.Id), server.DefaultBinding?.View(),
        server.ToolMappings.OrderBy(m => m.ToolName, StringComparer.Ordinal).Select(View).ToList(),
        server.CreatedAt, server.UpdatedAt, server.DefaultToolPolicy, ToolPolicyService.List(server).Policies, server.ApprovalWebhookUrl);

    public static ToolMappingView View(McpToolMapping mapping) => new(mapping.ToolName, mapping.CredentialId, mapping.Binding.HeaderName, mapping.UpdatedAt);

    /// <summary>Where the owner reconnects a credential: its card on the connections page.</summary>
    public static string ReconnectUrl(string baseUrl, string credentialId) => $"{baseUrl}{Site.ProfileNavigation.Connections}#{credentialId}";

    public Task<List<McpServer>> ListAsync(string ownerId, CancellationToken cancellationToken) =>
        db.McpServers.AsNoTracking().Include(s => s.ToolMappings).Include(s => s.ToolPolicies).AsSplitQuery().Where(s => s.OwnerId == ownerId)
            .OrderBy(s => s.CreatedAt).ThenBy(s => s.Id).ToListAsync(cancellationToken);

    /// <summary>The server if it is the caller's; another account's server is as absent as a missing one.</summary>
    public Task<McpServer?> FindAsync(string ownerId, string id, CancellationToken cancellationToken) =>
        db.McpServers.Include(s => s.ToolMappings).Include(s => s.ToolPolicies).AsSplitQuery()
            .FirstOrDefaultAsync(s => s.Id == id && s.OwnerId == ownerId, cancellationToken);

    public async Task<Outcome<McpServer>> CreateAsync(string ownerId, McpServerRequest request, CancellationToken cancellationToken)
    {
        var name = request.Name?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > 200)
        {
            return AgentError.BadRequest("name is required (at most 200 characters).");
        }
        if (await CheckUrlAsync(request.Url, cancellationToken) is { } urlError)
        {
            return urlError;
        }
        var now = time.GetUtcNow();
        var server = new McpServer
        {
            Id = Identifiers.NewHex("mcp"),
            OwnerId = ownerId,
            Name = name,
            UpstreamUrl = request.Url!.Trim(),
            CreatedAt = now,
            UpdatedAt = now,
        };
        if (request.DefaultCredentialId is not null)
        {
            var (header, error) = await CheckBindingAsync(ownerId, request.DefaultCredentialId, request.DefaultHeader, cancellationToken);
            if (error is not null)
            {
                return error;
            }
            server.DefaultCredentialId = request.DefaultCredentialId;
            server.DefaultHeader = header;
        }
        else if (request.DefaultHeader is not null)
        {
            return AgentError.BadRequest("default_header needs a default_credential_id.");
        }
        db.McpServers.Add(server);
        await db.SaveChangesAsync(cancellationToken);
        return server;
    }

    /// <summary>
    /// Changes the fields present in <paramref name="patch"/>: <c>name</c>, <c>url</c>,
    /// <c>default_credential_id</c> (null removes the default) and <c>default_header</c>.
    /// </summary>
    public async Task<AgentError?> UpdateAsync(McpServer server, McpServerPatch body, CancellationToken cancellationToken)
    {
        var patch = body.Fields;
        foreach (var (name, value) in patch)
        {
            if (name is not ("name" or "url" or "default_credential_id" or "default_header" or "default_tool_policy" or "approval_webhook_url"))
            {
                return AgentError.BadRequest($"{InputEcho.Quote(name)} cannot be changed; send name, url, default_credential_id, default_header, default_tool_policy or approval_webhook_url.");
            }
            if (value.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
            {
                return AgentError.BadRequest($"{InputEcho.Quote(name)} must be a string or null.");
            }
        }

        if (patch.TryGetValue("name", out var nameValue))
        {
            var name = nameValue.GetString()?.Trim();
            if (string.IsNullOrEmpty(name) || name.Length > 200)
            {
                return AgentError.BadRequest("name must not be empty (at most 200 characters).");
            }
            server.Name = name;
        }
        if (patch.TryGetValue("url", out var urlValue))
        {
            if (await CheckUrlAsync(urlValue.GetString(), cancellationToken) is { } urlError)
            {
                return urlError;
            }
            server.UpstreamUrl = urlValue.GetString()!.Trim();
        }
        if (patch.TryGetValue("default_tool_policy", out var policyValue))
        {
            if (!ToolPolicyActions.IsKnown(policyValue.GetString()))
            {
                return AgentError.BadRequest($"default_tool_policy must be one of {string.Join(", ", ToolPolicyActions.All)}.");
            }
            server.DefaultToolPolicy = policyValue.GetString()!;
        }
        if (patch.TryGetValue("approval_webhook_url", out var webhookValue))
        {
            if (webhookValue.GetString() is { } webhook && await CheckUrlAsync(webhook, cancellationToken) is { } webhookError)
            {
                return AgentError.BadRequest("approval_webhook_url: " + webhookError.Message);
            }
            server.ApprovalWebhookUrl = webhookValue.GetString()?.Trim();
        }
        var hasHeader = patch.TryGetValue("default_header", out var headerValue);
        if (patch.TryGetValue("default_credential_id", out var credentialValue))
        {
            if (credentialValue.ValueKind == JsonValueKind.Null)
            {
                server.DefaultCredentialId = null;
                server.DefaultHeader = null;
            }
            else
            {
                var (header, error) = await CheckBindingAsync(server.OwnerId, credentialValue.GetString(), hasHeader ? headerValue.GetString() : null, cancellationToken);
                if (error is not null)
                {
                    return error!;
                }
                server.DefaultCredentialId = credentialValue.GetString();
                server.DefaultHeader = header;
            }
        }
        else if (hasHeader)
        {
            if (server.DefaultCredentialId is null)
            {
                return AgentError.BadRequest("default_header needs a default_credential_id.");
            }
            var (header, error) = CheckHeader(headerValue.GetString());
            if (error is not null)
            {
                return error;
            }
            server.DefaultHeader = header;
        }
        server.UpdatedAt = time.GetUtcNow();
        return await SaveAsync(server.Id, cancellationToken);
    }

    /// <summary>Removes the server; one removed at the same time by another request counts as removed.</summary>
    public async Task DeleteAsync(McpServer server, CancellationToken cancellationToken)
    {
        db.McpServers.Remove(server);
        await SaveAsync(server.Id, cancellationToken);
    }

    /// <summary>Saves, answering a row changed or removed by a concurrent request as a conflict rather than a failure.</summary>
    internal async Task<AgentError?> SaveAsync(string serverId, CancellationToken cancellationToken)
    {
        try
        {
            await db.SaveChangesAsync(cancellationToken);
            return null;
        }
        catch (DbUpdateException)
        {
            db.ChangeTracker.Clear();
            return AgentError.Conflict("concurrent_change", $"The MCP server '{serverId}' was changed or removed by another request at the same time; read it again and retry.");
        }
    }

    public async Task<Outcome<McpToolMapping>> MapToolAsync(McpServer server, string tool, ToolCredentialRequest request, CancellationToken cancellationToken)
    {
        if (!IsToolName(tool))
        {
            return AgentError.BadRequest($"{InputEcho.Quote(tool)} is not a tool name: 1 to 128 letters, digits, '_', '-' or '.'.");
        }
        var (header, error) = await CheckBindingAsync(server.OwnerId, request.CredentialId, request.Header, cancellationToken);
        if (error is not null)
        {
            return error;
        }
        var now = time.GetUtcNow();
        var mapping = server.ToolMappings.Find(m => m.ToolName == tool);
        if (mapping is null)
        {
            mapping = new McpToolMapping { ServerId = server.Id, ToolName = tool, CredentialId = request.CredentialId!, Header = header, UpdatedAt = now };
            server.ToolMappings.Add(mapping);
        }
        else
        {
            mapping.CredentialId = request.CredentialId!;
            mapping.Header = header;
            mapping.UpdatedAt = now;
        }
        // A new mapping row changes what the server's cached route holds; touching the server says so.
        server.UpdatedAt = now;
        return await SaveAsync(server.Id, cancellationToken) is { } conflict ? conflict : mapping;
    }

    public async Task<bool> UnmapToolAsync(McpServer server, string tool, CancellationToken cancellationToken)
    {
        var mapping = server.ToolMappings.Find(m => m.ToolName == tool);
        if (mapping is null)
        {
            return false;
        }
        server.ToolMappings.Remove(mapping);
        server.UpdatedAt = time.GetUtcNow();
        // Removed by another request at the same time: gone either way.
        await SaveAsync(server.Id, cancellationToken);
        return true;
    }

    /// <summary>The gateway's view of a server, whoever owns it (the caller is checked against <see cref="GatewayRoute.OwnerId"/>).</summary>
    public ValueTask<GatewayRoute?> RouteAsync(string serverId, CancellationToken cancellationToken) =>
        routes.GetOrLoadAsync(serverId, (db, serverId), static async (state, ct) =>
        {
            var server = await state.db.McpServers.AsNoTracking().Include(s => s.ToolMappings).Include(s => s.ToolPolicies)
                .AsSplitQuery().FirstOrDefaultAsync(s => s.Id == state.serverId, ct);
            return server is null ? null : new GatewayRoute(server.Id, server.OwnerId, server.Name, new Uri(server.UpstreamUrl), server.DefaultBinding,
                server.ToolMappings.ToFrozenDictionary(m => m.ToolName, m => m.Binding, StringComparer.Ordinal),
                new ToolPolicySet(server.DefaultToolPolicy, server.ToolPolicies), server.ApprovalWebhookUrl);
        }, cancellationToken);

    public static bool IsToolName(string tool) => ToolNamePattern().IsMatch(tool);

    private async Task<AgentError?> CheckUrlAsync(string? url, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(url) || url.Length > 2000)
        {
            return AgentError.BadRequest("url is required: the upstream server's Streamable HTTP MCP endpoint, e.g. https://tools.example.com/mcp.");
        }
        if (Uri.TryCreate(url.Trim(), UriKind.Absolute, out var absolute) && absolute.Fragment.Length > 0)
        {
            return AgentError.BadRequest("url must not have a fragment.");
        }
        return await guard.CheckAsync(url.Trim(), options.Value.AllowPrivateNetworks, cancellationToken) is { } problem
            ? AgentError.BadRequest(problem + (options.Value.AllowPrivateNetworks ? "" : " (Mcp:AllowPrivateNetworks permits private and loopback upstreams, and plain http.)"))
            : null;
    }

    private async Task<(string? Header, AgentError? Error)> CheckBindingAsync(string ownerId, string? credentialId, string? header, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(credentialId))
        {
            return (null, AgentError.BadRequest("credential_id is required (GET /mcp/credentials lists yours)."));
        }
        if (!await db.BrokerCredentials.AnyAsync(c => c.Id == credentialId && c.AccountId == ownerId, cancellationToken))
        {
            return (null, AgentError.NotFound("credential", $"You have no credential {InputEcho.Quote(credentialId)}."));
        }
        return CheckHeader(header);
    }

    private static (string? Header, AgentError? Error) CheckHeader(string? header)
    {
        if (string.IsNullOrWhiteSpace(header) || string.Equals(header.Trim(), AuthorizationHeader, StringComparison.OrdinalIgnoreCase))
        {
            return (null, null);
        }
        header = header.Trim();
        if (!HttpHeaderName.IsValid(header))
        {
            return (null, AgentError.BadRequest($"{InputEcho.Quote(header)} is not an HTTP header name."));
        }
        if (ReservedHeaders.Contains(header) || header.StartsWith("Mcp-", StringComparison.OrdinalIgnoreCase) || header.StartsWith("Content-", StringComparison.OrdinalIgnoreCase))
        {
            return (null, AgentError.BadRequest($"{InputEcho.Quote(header)} carries the protocol itself and cannot carry a credential; pick another header."));
        }
        return (header, null);
    }

    [GeneratedRegex("^[A-Za-z0-9_.-]{1,128}$")]
    private static partial Regex ToolNamePattern();

}

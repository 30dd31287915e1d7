using System.ComponentModel.DataAnnotations;
using System.Net;
using System.Text.Json;
using Latchkey.Common;
using Latchkey.Features.AuthorizationServer.Stores;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Latchkey.Features.AuthorizationServer.Apps;

/// <summary>
/// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, MCP 2026-07-28):
/// a client whose <c>client_id</c> is an https URL is the document at that URL. Latchkey fetches
/// it (through the SSRF guard, no redirects, within a size and time limit), checks it as strictly
/// as a self-registration (its <c>client_id</c> must be the URL itself; public clients only; the
/// self-registration scopes), and keeps it as a public app whose redirect URIs match exactly. The
/// app is refreshed when its HTTP caching lifetime, held between
/// <see cref="ClientMetadataDocumentOptions.MinCacheSeconds"/> and
/// <see cref="ClientMetadataDocumentOptions.MaxCacheSeconds"/>, runs out.
/// </summary>
public sealed partial class ClientMetadataDocuments(
    OAuthApplicationManager applications,
    OAuthAppService apps,
    LatchkeyDbContext db,
    AnonymousRegistrationScopes anonymousScopes,
    IHttpClientFactory httpClients,
    OutboundAddressGuard guard,
    IMemoryCache refusals,
    IOptions<AuthorizationServerOptions> options,
    TimeProvider time,
    ILogger<ClientMetadataDocuments> logger)
{
    public const string HttpClientName = "latchkey-client-metadata";

    /// <summary>
    /// How long a refused document stays refused on a node without being fetched again: a client
    /// (or someone naming its URL) cannot make Latchkey fetch on every request, and its developer
    /// waits no longer than this after a fix.
    /// </summary>
    public static readonly TimeSpan RefusalRemembered = TimeSpan.FromSeconds(30);

    /// <summary>The grants a client may name in its document: it has no secret, so nothing that needs one.</summary>
    private static readonly string[] PublicGrantTypes = [GrantTypes.AuthorizationCode, GrantTypes.RefreshToken, GrantTypes.DeviceCode];

    // One refresh of a document at a time on this node; documents of other URLs wait only when they share a stripe.
    private static readonly SemaphoreSlim[] s_refreshLocks = [.. Enumerable.Range(0, 32).Select(_ => new SemaphoreSlim(1, 1))];

    private ClientMetadataDocumentOptions Settings => options.Value.ClientMetadataDocuments;

    /// <summary>Whether a client id is meant as a document URL (anything else is a registered client's id).</summary>
    public static bool IsDocumentUrl(string? clientId) =>
        clientId is not null && (clientId.StartsWith("https://", StringComparison.OrdinalIgnoreCase) || clientId.StartsWith("http://", StringComparison.OrdinalIgnoreCase));

    /// <summary>The host an app's metadata document came from (punycode), or null for an app registered otherwise.</summary>
    public static string? HostOf(OAuthApplication application) =>
        application.MetadataDocumentExpiresAt is not null && Uri.TryCreate(application.ClientId, UriKind.Absolute, out var url) ? url.IdnHost : null;

    /// <summary>
    /// Makes sure the app of a document URL is stored and current, fetching the document when it
    /// is not. Null when it is (or when the client id is not a URL); otherwise why the client is
    /// refused, for its <c>invalid_client</c> answer.
    /// </summary>
    public async Task<string?> EnsureCurrentAsync(string clientId, CancellationToken cancellationToken)
    {
        if (!IsDocumentUrl(clientId))
        {
            return null;
        }
        if (!Settings.Enabled)
        {
            return "This server does not accept client metadata documents as client ids; register the client (RFC 7591) instead.";
        }
        if ((UrlProblem(clientId) ?? HostProblem(new Uri(clientId).IdnHost)) is { } refused)
        {
            return refused;
        }

        var now = time.GetUtcNow();
        var app = await applications.FindByClientIdAsync(clientId, cancellationToken);
        if (app is not null && (app.MetadataDocumentExpiresAt is null || app.MetadataDocumentExpiresAt > now))
        {
            return null;
        }

        var refusalKey = (typeof(ClientMetadataDocuments), clientId);
        if (refusals.TryGetValue(refusalKey, out string? remembered))
        {
            return remembered;
        }
        var refreshLock = s_refreshLocks[(uint)StringComparer.Ordinal.GetHashCode(clientId) % (uint)s_refreshLocks.Length];
        await refreshLock.WaitAsync(cancellationToken);
        try
        {
            // Another request may have refreshed it while this one waited.
            var stored = await db.OAuthApplications.AsNoTracking().Where(a => a.ClientId == clientId)
                .Select(a => new { a.MetadataDocumentExpiresAt }).FirstOrDefaultAsync(cancellationToken);
            if (stored is not null && stored.MetadataDocumentExpiresAt > now)
            {
                return null;
            }
            if (stored is null && app is not null)
            {
                db.Entry(app).State = EntityState.Detached;
                app = null;
            }

            var (document, expiresAt, fetchProblem) = await FetchAsync(clientId, cancellationToken);
            if (document is null)
            {
                return Refuse(refusalKey, clientId, fetchProblem!);
            }
            var (request, documentProblem) = Read(clientId, document.RootElement);
            if (request is null)
            {
                return Refuse(refusalKey, clientId, documentProblem!);
            }
            var errors = await apps.SaveFromMetadataDocumentAsync(app, clientId, request, expiresAt, cancellationToken);
            if (errors.Count > 0)
            {
                return Refuse(refusalKey, clientId, "The client metadata document is refused: " + string.Join(" ", errors.SelectMany(e => e.Value)));
            }
            LogFetched(logger, clientId, (int)(expiresAt - now).TotalSeconds);
            return null;
        }
        catch (DbUpdateException)
        {
            // Another node stored or refreshed the same document first; what it stored is as good.
            return null;
        }
        finally
        {
            refreshLock.Release();
        }
    }

    private string Refuse(object refusalKey, string clientId, string problem)
    {
        LogRefused(logger, clientId, problem);
        refusals.Set(refusalKey, problem, RefusalRemembered);
        return problem;
    }

    /// <summary>The draft's rules for the URL (§3): https, a path, no dot segments, fragment, credentials or query.</summary>
    public static string? UrlProblem(string clientId)
    {
        if (clientId.Length > OAuthAppLimits.ClientIdMaxLength)
        {
            return $"A client metadata document URL may have at most {OAuthAppLimits.ClientIdMaxLength} characters.";
        }
        if (!Uri.TryCreate(clientId, UriKind.Absolute, out var url) || DisplayedText.FirstHiddenCharacter(clientId) is not null)
        {
            return $"The client_id {InputEcho.Quote(clientId)} is not a valid URL.";
        }
        if (url.Scheme != Uri.UriSchemeHttps)
        {
            return "A client metadata document URL must use https.";
        }
        if (!string.IsNullOrEmpty(url.UserInfo) || clientId.Contains('#') || clientId.Contains('?'))
        {
            return "A client metadata document URL may not carry credentials, a query or a fragment.";
        }
        // Checked on the text as sent: Uri has already removed dot segments from AbsolutePath.
        var path = clientId[(clientId.IndexOf("//", StringComparison.Ordinal) + 2)..];
        var slash = path.IndexOf('/');
        if (slash < 0 || slash == path.Length - 1)
        {
            return "A client metadata document URL must have a path (https://host/path/to/document).";
        }
        foreach (var segment in path[(slash + 1)..].Split('/'))
        {
            var decoded = segment.Replace("%2e", ".", StringComparison.OrdinalIgnoreCase);
            if (decoded is "." or "..")
            {
                return "A client metadata document URL may not contain '.' or '..' path segments.";
            }
        }
        return null;
    }

    /// <summary>The operator's allow and deny lists (a denial wins).</summary>
    private string? HostProblem(string host)
    {
        if (Settings.DeniedHosts.Any(pattern => HostMatches(pattern, host)))
        {
            return $"Client metadata documents from {InputEcho.Quote(host)} are not accepted by this server.";
        }
        if (Settings.AllowedHosts.Count > 0 && !Settings.AllowedHosts.Any(pattern => HostMatches(pattern, host)))
        {
            return $"This server accepts client metadata documents only from hosts its operator lists; {InputEcho.Quote(host)} is not one of them.";
        }
        return null;
    }

    /// <summary><c>app.example.com</c> matches itself; <c>*.example.com</c> matches its subdomains, not example.com.</summary>
    internal static bool HostMatches(string pattern, string host) =>
        pattern.StartsWith("*.", StringComparison.Ordinal)
            ? host.EndsWith(pattern[1..], StringComparison.OrdinalIgnoreCase) && host.Length > pattern.Length - 1
            : string.Equals(pattern, host, StringComparison.OrdinalIgnoreCase);

    private async Task<(JsonDocument? Document, DateTimeOffset ExpiresAt, string? Problem)> FetchAsync(string url, CancellationToken cancellationToken)
    {
        var settings = Settings;
        if (await guard.CheckAsync(url, settings.AllowPrivateNetworks, cancellationToken) is { } refused)
        {
            return (null, default, $"The client metadata document cannot be fetched: {refused}");
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(settings.FetchTimeoutSeconds));
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            request.Headers.Accept.ParseAdd("application/json");
            using var response = await httpClients.CreateClient(HttpClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            if ((int)response.StatusCode is >= 300 and < 400)
            {
                return (null, default, $"The client metadata document URL answered with a redirect (HTTP {(int)response.StatusCode}); documents are not fetched through redirects.");
            }
            if (response.StatusCode != HttpStatusCode.OK)
            {
                return (null, default, $"The client metadata document URL answered HTTP {(int)response.StatusCode}; it must answer 200 with the document.");
            }
            if (response.Content.Headers.ContentLength > settings.MaxDocumentBytes)
            {
                return (null, default, TooLarge(settings));
            }
            var body = await ReadAtMostAsync(await response.Content.ReadAsStreamAsync(timeout.Token), settings.MaxDocumentBytes + 1, timeout.Token);
            if (body.Length > settings.MaxDocumentBytes)
            {
                return (null, default, TooLarge(settings));
            }
            var document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                document.Dispose();
                return (null, default, "The client metadata document is not a JSON object.");
            }
            return (document, time.GetUtcNow() + CacheLifetime(response, settings), null);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return (null, default, $"The client metadata document did not arrive within {settings.FetchTimeoutSeconds} seconds.");
        }
        catch (HttpRequestException exception)
        {
            // The guard's own refusals say why; other failures are named by kind, not by the library's words.
            return (null, default, exception.Message.StartsWith("Refused to connect", StringComparison.Ordinal)
                ? $"The client metadata document cannot be fetched: {exception.Message}"
                : $"The client metadata document cannot be fetched ({exception.HttpRequestError}).");
        }
        catch (JsonException)
        {
            return (null, default, "The client metadata document is not valid JSON.");
        }
    }

    private static string TooLarge(ClientMetadataDocumentOptions settings) =>
        $"The client metadata document is larger than {settings.MaxDocumentBytes} bytes.";

    private static async Task<byte[]> ReadAtMostAsync(Stream stream, int limit, CancellationToken cancellationToken)
    {
        var buffer = new byte[limit];
        var read = 0;
        while (read < limit && await stream.ReadAsync(buffer.AsMemory(read, limit - read), cancellationToken) is > 0 and var count)
        {
            read += count;
        }
        return buffer[..read];
    }

    /// <summary>HTTP caching (RFC 9111): max-age, else Expires, held between the configured bounds; no-store and no-cache get the least.</summary>
    private TimeSpan CacheLifetime(HttpResponseMessage response, ClientMetadataDocumentOptions settings)
    {
        var cacheControl = response.Headers.CacheControl;
        TimeSpan? declared = cacheControl is { NoStore: true } or { NoCache: true } ? TimeSpan.Zero
            : cacheControl?.MaxAge ?? (response.Content.Headers.Expires is { } expires ? expires - time.GetUtcNow() : null);
        var seconds = Math.Clamp(declared?.TotalSeconds ?? settings.MinCacheSeconds, settings.MinCacheSeconds, settings.MaxCacheSeconds);
        return TimeSpan.FromSeconds(seconds);
    }

    /// <summary>The document as an app registration, or why it cannot be one.</summary>
    private (OAuthAppRequest? Request, string? Problem) Read(string url, JsonElement root)
    {
        ClientRegistrationRequest? metadata;
        try
        {
            metadata = root.Deserialize<ClientRegistrationRequest>();
        }
        catch (JsonException exception)
        {
            return (null, $"The client metadata document has a value of the wrong type at {InputEcho.Quote(exception.Path ?? "$")}.");
        }
        if (metadata is null)
        {
            return (null, "The client metadata document is not a JSON object.");
        }
        if (!root.TryGetProperty("client_id", out var named) || named.ValueKind != JsonValueKind.String || named.GetString() != url)
        {
            return (null, "The client metadata document's client_id must be exactly the URL it was fetched from.");
        }
        if (root.TryGetProperty("client_secret", out _) || root.TryGetProperty("client_secret_expires_at", out _))
        {
            return (null, "A client metadata document may not carry a client secret: it is public.");
        }
        if (metadata.TokenEndpointAuthMethod is { } method && method != ClientAuthenticationMethods.None)
        {
            return (null, $"Clients identified by a metadata document are public here: token_endpoint_auth_method must be \"none\", not {InputEcho.Quote(method)}.");
        }
        if (metadata.RedirectUris is not { Length: > 0 })
        {
            return (null, "The client metadata document must list its redirect_uris.");
        }
        if (ClientRegistrationEndpoints.RedirectOrDisplayProblem(metadata) is { } refused)
        {
            return (null, refused.Description);
        }
        var grants = metadata.GrantTypes ?? [GrantTypes.AuthorizationCode, GrantTypes.RefreshToken];
        if (grants.FirstOrDefault(g => !PublicGrantTypes.Contains(g)) is { } grant)
        {
            return (null, $"The grant type {InputEcho.Quote(grant)} is not available to a client identified by a metadata document; it may use {string.Join(", ", PublicGrantTypes)}.");
        }
        if (metadata.ResponseTypes?.Any(r => r != ResponseTypes.Code) == true)
        {
            return (null, "Only the 'code' response type is supported.");
        }
        var scopes = (metadata.Scope ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (scopes.FirstOrDefault(s => !anonymousScopes.Permits(s)) is { } outside)
        {
            return (null, $"A client identified by a metadata document may ask only for the scopes {string.Join(' ', anonymousScopes.Allowed)}; " +
                          $"{InputEcho.Quote(outside)} is not one of them.");
        }
        return (new OAuthAppRequest(
            string.IsNullOrEmpty(metadata.ClientName) ? new Uri(url).Host : metadata.ClientName,
            null,
            Uri.TryCreate(metadata.ClientUri, UriKind.Absolute, out _) ? metadata.ClientUri : null,
            metadata.RedirectUris,
            scopes.Length > 0 ? [.. scopes.Where(s => s != OpenIddict.Abstractions.OpenIddictConstants.Scopes.OfflineAccess)] : [.. anonymousScopes.Allowed],
            Confidential: false,
            GrantTypes: grants,
            RequirePushedAuthorizationRequests: metadata.RequirePushedAuthorizationRequests ?? false), null);
    }

    /// <summary>The settings' own problems, for start-up validation.</summary>
    internal static IEnumerable<string> OptionProblems(ClientMetadataDocumentOptions settings)
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(settings, new ValidationContext(settings), results, validateAllProperties: true);
        foreach (var result in results)
        {
            yield return $"AuthorizationServer:ClientMetadataDocuments: {result.ErrorMessage}";
        }
        if (settings.MinCacheSeconds > settings.MaxCacheSeconds)
        {
            yield return "AuthorizationServer:ClientMetadataDocuments:MinCacheSeconds may not exceed MaxCacheSeconds.";
        }
        foreach (var (list, hosts) in new[] { ("AllowedHosts", settings.AllowedHosts), ("DeniedHosts", settings.DeniedHosts) })
        {
            foreach (var pattern in hosts)
            {
                var name = pattern.StartsWith("*.", StringComparison.Ordinal) ? pattern[2..] : pattern;
                if (Uri.CheckHostName(name) is not (UriHostNameType.Dns or UriHostNameType.IPv4 or UriHostNameType.IPv6))
                {
                    yield return $"AuthorizationServer:ClientMetadataDocuments:{list} {InputEcho.Quote(pattern)} is not a host name or *.domain.";
                }
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Fetched the client metadata document {Url}; kept for {Seconds} s")]
    private static partial void LogFetched(ILogger logger, string url, int seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused the client metadata document {Url}: {Reason}")]
    private static partial void LogRefused(ILogger logger, string url, string reason);
}

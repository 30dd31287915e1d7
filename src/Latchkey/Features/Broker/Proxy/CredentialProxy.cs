using System.Collections.Frozen;
using System.Text;
using Latchkey.Common;
using Latchkey.Features.AgentApi;
using Latchkey.Features.Broker.Credentials;
using Latchkey.Features.Broker.Providers;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Broker.Proxy;

/// <summary>
/// <c>/mcp/proxy/{credential_id}/{path}</c>: forwards a request to the credential's provider API
/// (below its <c>api_base_url</c>, only to its declared hosts) with the credential injected, and
/// streams both bodies. A 401 answer gets one refresh and one retry when the credential can be
/// refreshed and the request body was small enough to keep. The credential never reaches the
/// caller: the caller's own credentials are not forwarded, and any echo of the secret in the
/// answer's headers or body is masked. Every call is audited (method, path, status).
/// </summary>
public sealed partial class CredentialProxy(CredentialService credentials, IHttpClientFactory httpClients, CredentialAudit audit, IOptions<BrokerOptions> options, ILogger<CredentialProxy> logger)
{
    public const string Prefix = "/mcp/proxy";

    /// <summary>A request body up to this size is kept so that it can be sent again after a refresh.</summary>
    public const int RetryableBodyBytes = 1 << 20;

    /// <summary>Secrets shorter than this are not masked in answers (a short value matches ordinary text).</summary>
    private const int MaskableLength = 8;

    // Hop-by-hop headers, and what identifies the caller to Latchkey or describes the connection: never forwarded.
    private static readonly FrozenSet<string> RequestHeadersDropped = new[]
    {
        "Host", "Connection", "Keep-Alive", "Transfer-Encoding", "TE", "Trailer", "Upgrade", "Proxy-Authorization", "Proxy-Connection",
        "Authorization", "X-API-Key", "Cookie", "DPoP", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Expect",
        // Answers must arrive whole and uncompressed, or an echo of the secret would pass unmasked.
        "Accept-Encoding", "Range", "If-Range",
    }.ToFrozenSet(StringComparer.OrdinalIgnoreCase);

    private static readonly FrozenSet<string> ResponseHeadersDropped = new[]
    {
        "Connection", "Keep-Alive", "Transfer-Encoding", "TE", "Trailer", "Upgrade", "Proxy-Authenticate", "Set-Cookie", "Alt-Svc",
        // The provider's policies are not Latchkey's origin's.
        "Strict-Transport-Security", "Clear-Site-Data", "Content-Security-Policy", "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials",
        "Access-Control-Allow-Headers", "Access-Control-Allow-Methods", "Access-Control-Expose-Headers", "Access-Control-Max-Age",
    }.ToFrozenSet(StringComparer.OrdinalIgnoreCase);

    public async Task HandleAsync(HttpContext context, string accountId, string credentialId)
    {
        // Uploads through the proxy may be larger than the agent API's bodies (Server:MaxRequestBodyBytes).
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = options.Value.ProxyMaxRequestBodyBytes;
        }
        var aborted = context.RequestAborted;
        if (HttpMethods.IsTrace(context.Request.Method) || HttpMethods.IsConnect(context.Request.Method))
        {
            await WriteAsync(context, new AgentError(StatusCodes.Status405MethodNotAllowed, "invalid_request", "TRACE and CONNECT are not proxied."));
            return;
        }
        var (current, error) = await credentials.CurrentAsync(accountId, credentialId, "proxy", aborted);
        if (current is null)
        {
            await WriteAsync(context, error!);
            return;
        }
        var relative = RelativeTarget(context, credentialId);
        if (current.Definition.ApiBaseUrl is null)
        {
            await WriteAsync(context, AgentError.Conflict("no_api_base_url", $"The credential's provider declares no api_base_url, so there is nothing to proxy to."));
            return;
        }
        if (relative is null || ProviderApi.Target(current.Definition, relative) is not { } target)
        {
            audit.Record(credentialId, accountId, "proxy", "refused: outside the API");
            await WriteAsync(context, AgentError.BadRequest(
                $"The path must stay below {current.Definition.ApiBaseUrl} (no '.' or '..' segments) on the provider's declared hosts ({string.Join(", ", current.Definition.ProxyHosts)})."));
            return;
        }

        var request = context.Request;
        byte[]? kept = null;
        // HTTP/2 and 3 bodies need not announce a length; the server knows whether one may follow.
        var hasBody = request.ContentLength > 0 || (request.ContentLength is null && context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody == true);
        if (hasBody && request.ContentLength is <= RetryableBodyBytes)
        {
            kept = new byte[request.ContentLength.Value];
            try
            {
                await request.Body.ReadExactlyAsync(kept, aborted);
            }
            catch (BadHttpRequestException exception)
            {
                await WriteAsync(context, new AgentError(exception.StatusCode, "invalid_request", "The request body could not be read."));
                return;
            }
        }

        var token = current.Token;
        var client = httpClients.CreateClient(ProviderApi.ClientName);
        HttpResponseMessage response;
        try
        {
            response = await SendAsync(client, context, target, token, kept, hasBody, aborted);
            if (response.StatusCode == System.Net.HttpStatusCode.Unauthorized && current.Refreshable && (!hasBody || kept is not null))
            {
                // The provider refused the token before it expired (revoked, rotated elsewhere): one refresh, one retry.
                var refreshed = await credentials.RefreshAsync(accountId, credentialId, aborted);
                if (refreshed.Error is null && (await credentials.CurrentAsync(accountId, credentialId, "proxy", aborted)).Value is { } renewed)
                {
                    response.Dispose();
                    token = renewed.Token;
                    response = await SendAsync(client, context, target, token, kept, hasBody, aborted);
                }
            }
        }
        catch (OperationCanceledException) when (!aborted.IsCancellationRequested)
        {
            audit.Record(credentialId, accountId, "proxy", Truncate($"{request.Method} {target.AbsolutePath} timeout"));
            await WriteAsync(context, new AgentError(StatusCodes.Status504GatewayTimeout, "provider_timeout",
                $"The provider did not answer within {options.Value.ProxyTimeoutSeconds} s (Broker:ProxyTimeoutSeconds)."));
            return;
        }
        catch (Exception exception) when (TooLarge(exception) is { } tooLarge)
        {
            audit.Record(credentialId, accountId, "proxy", Truncate($"{request.Method} {target.AbsolutePath} body too large"));
            await WriteAsync(context, new AgentError(tooLarge.StatusCode, "invalid_request",
                $"The request body is larger than Broker:ProxyMaxRequestBodyBytes ({options.Value.ProxyMaxRequestBodyBytes} bytes)."));
            return;
        }
        catch (HttpRequestException exception)
        {
            audit.Record(credentialId, accountId, "proxy", Truncate($"{request.Method} {target.AbsolutePath} unreachable"));
            await WriteAsync(context, AgentError.Provider($"The provider could not be reached: {exception.Message}"));
            return;
        }

        using (response)
        {
            audit.Record(credentialId, accountId, "proxy", Truncate($"{request.Method} {target.AbsolutePath} {(int)response.StatusCode}"));
            LogProxied(logger, credentialId, request.Method, target.Host, (int)response.StatusCode);
            var secrets = Secrets(token, current.Definition);
            context.Response.StatusCode = (int)response.StatusCode;
            foreach (var header in response.Headers.Concat(response.Content.Headers))
            {
                // A value that is not ASCII cannot be written by Kestrel: dropped rather than a 500 after the provider acted.
                if (!ResponseHeadersDropped.Contains(header.Key) && header.Value.All(v => v.All(char.IsAscii)))
                {
                    context.Response.Headers[header.Key] = header.Value.Select(v => Mask(v, secrets)).ToArray();
                }
            }
            // The body's length is kept: masking replaces a secret with as many bytes.
            await using var body = await response.Content.ReadAsStreamAsync(aborted);
            await MaskingCopy.CopyAsync(body, context.Response.Body, secrets.Select(Encoding.UTF8.GetBytes).ToArray(), aborted);
        }
    }

    private async Task<HttpResponseMessage> SendAsync(HttpClient client, HttpContext context, Uri target, AccessTokenResponse token, byte[]? kept, bool hasBody, CancellationToken aborted)
    {
        var request = context.Request;
        using var outgoing = new HttpRequestMessage(new HttpMethod(request.Method), target);
        foreach (var header in request.Headers)
        {
            if (!RequestHeadersDropped.Contains(header.Key) && !token.Headers.ContainsKey(header.Key) && !header.Key.StartsWith("Content-", StringComparison.OrdinalIgnoreCase))
            {
                outgoing.Headers.TryAddWithoutValidation(header.Key, (IEnumerable<string?>)header.Value);
            }
        }
        foreach (var (name, value) in token.Headers)
        {
            outgoing.Headers.TryAddWithoutValidation(name, value);
        }
        if (hasBody)
        {
            outgoing.Content = kept is not null ? new ByteArrayContent(kept) : new StreamContent(request.Body);
            foreach (var header in request.Headers.Where(h => h.Key.StartsWith("Content-", StringComparison.OrdinalIgnoreCase)))
            {
                outgoing.Content.Headers.TryAddWithoutValidation(header.Key, (IEnumerable<string?>)header.Value);
            }
        }
        // The timeout covers the wait for the answer's headers; the body then streams as long as it takes.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        timeout.CancelAfter(TimeSpan.FromSeconds(options.Value.ProxyTimeoutSeconds));
        return await client.SendAsync(outgoing, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
    }

    /// <summary>
    /// The request target after <c>/mcp/proxy/{id}/</c>, still percent-encoded as the caller sent it
    /// (an encoded slash stays one); null when the raw target does not have that form.
    /// </summary>
    private static string? RelativeTarget(HttpContext context, string credentialId)
    {
        var raw = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? "";
        foreach (var id in new[] { credentialId, Uri.EscapeDataString(credentialId) })
        {
            var prefix = $"{Prefix}/{id}";
            if (raw.StartsWith(prefix, StringComparison.Ordinal))
            {
                var rest = raw[prefix.Length..];
                return rest.Length == 0 || rest[0] is '/' or '?' ? rest : null;
            }
        }
        return null;
    }

    /// <summary>
    /// The secret values this credential's headers carry (the token, a Basic value, each custom
    /// header), not the provider's fixed headers (Notion's version date is not a secret).
    /// </summary>
    private static string[] Secrets(AccessTokenResponse token, ProviderDefinition definition) =>
        [.. token.Headers.Where(h => !definition.ExtraHeaders.ContainsKey(h.Key)).Select(h => h.Value).Append(token.AccessToken)
            .Where(v => v.Length >= MaskableLength).Distinct(StringComparer.Ordinal).OrderByDescending(v => v.Length)];

    private static string Mask(string? value, string[] secrets)
    {
        var masked = value ?? "";
        foreach (var secret in secrets)
        {
            masked = masked.Replace(secret, new string('*', secret.Length), StringComparison.Ordinal);
        }
        return masked;
    }

    private static BadHttpRequestException? TooLarge(Exception? exception)
    {
        for (; exception is not null; exception = exception.InnerException)
        {
            if (exception is BadHttpRequestException bad)
            {
                return bad;
            }
        }
        return null;
    }

    private static Task WriteAsync(HttpContext context, AgentError error) => error.ExecuteAsync(context);

    private static string Truncate(string value) => value.Length > 200 ? value[..200] : value;

    [LoggerMessage(Level = LogLevel.Information, Message = "Proxied a call with credential {CredentialId}: {Method} to {Host} answered {Status}")]
    private static partial void LogProxied(ILogger logger, string credentialId, string method, string host, int status);
}

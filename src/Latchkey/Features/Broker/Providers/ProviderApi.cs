using Microsoft.Extensions.Options;

namespace Latchkey.Features.Broker.Providers;

/// <summary>What a provider's test request found.</summary>
public sealed record ProbeResult(bool Works, int? Status, string Message)
{
    /// <summary>
    /// The provider refused the credential itself (401), as opposed to failing. A 403 is not a
    /// refusal: the credential was recognised but lacks a permission (a restricted key, a rate
    /// limit), and marking it broken would stop a working connection.
    /// </summary>
    public bool Refused => Status == 401;
}

/// <summary>
/// Calls a provider's API (not its OAuth endpoints) with a credential's headers: the test request
/// that shows whether a credential works, and the proxy's requests. Only below the provider's
/// <c>api_base_url</c>, only to its declared hosts, through the SSRF guard, never following a redirect.
/// </summary>
public sealed class ProviderApi(IHttpClientFactory httpClients, IOptions<BrokerOptions> options)
{
    /// <summary>The proxy's client: no overall timeout (bodies stream as long as they take; the caller's abort ends them).</summary>
    public const string ClientName = "latchkey-provider-api";

    /// <summary>
    /// The URL a path below the API base resolves to, or null when it would leave the base (dot
    /// segments, another host or scheme) or the declared hosts.
    /// </summary>
    public static Uri? Target(ProviderDefinition definition, string relativePathAndQuery)
    {
        if (!Uri.TryCreate(definition.ApiBaseUrl, UriKind.Absolute, out var apiBase))
        {
            return null;
        }
        var basePath = apiBase.AbsolutePath.TrimEnd('/');
        var relative = relativePathAndQuery.TrimStart('/');
        if (!Uri.TryCreate($"{apiBase.Scheme}://{apiBase.Authority}{basePath}/{relative}", UriKind.Absolute, out var target))
        {
            return null;
        }
        var inside = target.Scheme == apiBase.Scheme && target.Authority == apiBase.Authority
                     && (target.AbsolutePath == basePath || target.AbsolutePath.StartsWith(basePath + "/", StringComparison.Ordinal))
                     && definition.ProxyHosts.Contains(target.Host, StringComparer.OrdinalIgnoreCase);
        // A dot segment, raw or encoded, is refused rather than normalised: the caller meant something
        // else. So is an encoded slash, backslash or dot, a raw backslash and a ';' after dots: servers
        // that decode them, or strip ';' parameters, would read a dot segment there.
        var path = relative.Split('?')[0];
        var dotted = path.Contains('\\', StringComparison.Ordinal)
                     || path.Contains("%2f", StringComparison.OrdinalIgnoreCase) || path.Contains("%5c", StringComparison.OrdinalIgnoreCase)
                     || path.Contains("%2e", StringComparison.OrdinalIgnoreCase) || path.Contains("%25", StringComparison.Ordinal)
                     || path.Split('/').Any(segment => segment.Split(';')[0] is "." or "..");
        return inside && !dotted ? target : null;
    }

    /// <summary>Runs the provider's test request with the credential's headers.</summary>
    public async Task<ProbeResult> TestAsync(ProviderDefinition definition, IReadOnlyDictionary<string, string> headers, CancellationToken cancellationToken)
    {
        if (definition.TestRequest is not { } test || Target(definition, test.Path) is not { } target)
        {
            return new ProbeResult(true, null, "The provider has no test request.");
        }
        using var request = new HttpRequestMessage(new HttpMethod(test.Method), target);
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        request.Headers.Accept.ParseAdd("application/json");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(options.Value.ProviderTimeoutSeconds));
        try
        {
            using var response = await httpClients.CreateClient(ClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            var status = (int)response.StatusCode;
            return response.IsSuccessStatusCode || status == 403
                ? new ProbeResult(true, status, $"{test.Method} {test.Path} answered {status}{(status == 403 ? " (recognised, but not allowed that request)" : "")}.")
                : new ProbeResult(false, status, $"{definition.Name} answered {status} to {test.Method} {test.Path}.");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new ProbeResult(false, null, $"{definition.Name} did not answer {test.Method} {test.Path} within {options.Value.ProviderTimeoutSeconds} s.");
        }
        catch (HttpRequestException exception)
        {
            return new ProbeResult(false, null, $"{definition.Name} could not be reached: {exception.Message}");
        }
    }
}

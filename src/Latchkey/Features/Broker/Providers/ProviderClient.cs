using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Duende.IdentityModel.Client;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Broker.Providers;

/// <summary>What a provider's token endpoint gave back, read through its quirks.</summary>
public sealed record ProviderTokens(string AccessToken, string? RefreshToken, int? ExpiresIn, string? Scope, JsonElement Raw);

/// <summary>How a provider call failed.</summary>
public enum ProviderFailureKind
{
    /// <summary>The grant is no longer good (invalid_grant, revoked): the person must connect again.</summary>
    InvalidGrant,

    /// <summary>Timeouts, 429, 5xx, network errors, after the retries.</summary>
    Unavailable,

    /// <summary>Any other refusal.</summary>
    Refused,
}

public sealed class ProviderCallException(ProviderFailureKind kind, string message) : Exception(message)
{
    public ProviderFailureKind Kind { get; } = kind;
}

/// <summary>
/// Talks OAuth to providers on the caller's behalf with Duende.IdentityModel, through the
/// SSRF-guarded HTTP client, retrying transient failures with backoff.
/// </summary>
public sealed partial class ProviderClient(IHttpClientFactory httpClients, IOptions<BrokerOptions> options, ILogger<ProviderClient> logger)
{
    public Task<ProviderTokens> ExchangeCodeAsync(ProviderDefinition provider, string clientId, string clientSecret, string code, string redirectUri,
        string? codeVerifier, CancellationToken cancellationToken) =>
        WithRetriesAsync(provider, "token exchange", async http =>
        {
            var request = new AuthorizationCodeTokenRequest
            {
                Address = provider.TokenUrl,
                ClientId = clientId,
                ClientSecret = clientSecret,
                ClientCredentialStyle = Style(provider),
                Code = code,
                RedirectUri = redirectUri,
                CodeVerifier = codeVerifier,
            };
            AcceptJson(request);
            return Read(provider, await http.RequestAuthorizationCodeTokenAsync(request, cancellationToken));
        }, cancellationToken);

    public Task<ProviderTokens> RefreshAsync(ProviderDefinition provider, string clientId, string clientSecret, string refreshToken, CancellationToken cancellationToken) =>
        WithRetriesAsync(provider, "refresh", async http =>
        {
            var request = new RefreshTokenRequest
            {
                Address = provider.TokenUrl,
                ClientId = clientId,
                ClientSecret = clientSecret,
                ClientCredentialStyle = Style(provider),
                RefreshToken = refreshToken,
            };
            AcceptJson(request);
            return Read(provider, await http.RequestRefreshTokenAsync(request, cancellationToken));
        }, cancellationToken);

    /// <summary>The client credentials grant: a token for the client itself (machine to machine).</summary>
    public Task<ProviderTokens> ClientCredentialsAsync(ProviderDefinition provider, string clientId, string clientSecret, string? scope, CancellationToken cancellationToken) =>
        WithRetriesAsync(provider, "client credentials grant", async http =>
        {
            var request = new ClientCredentialsTokenRequest
            {
                Address = provider.TokenUrl,
                ClientId = clientId,
                ClientSecret = clientSecret,
                ClientCredentialStyle = Style(provider),
                Scope = string.IsNullOrEmpty(scope) ? null : scope,
            };
            AcceptJson(request);
            return Read(provider, await http.RequestClientCredentialsTokenAsync(request, cancellationToken));
        }, cancellationToken);

    /// <summary>Revokes at the provider when it has a revocation endpoint; false when it has none or refused.</summary>
    public async Task<bool> TryRevokeAsync(ProviderDefinition provider, string clientId, string clientSecret, string token, string hint, CancellationToken cancellationToken)
    {
        if (provider.RevocationUrl is null)
        {
            return false;
        }
        try
        {
            var http = httpClients.CreateClient(ProviderHttpSetup.ClientName);
            var response = await http.RevokeTokenAsync(new TokenRevocationRequest
            {
                Address = provider.RevocationUrl,
                ClientId = clientId,
                ClientSecret = clientSecret,
                ClientCredentialStyle = Style(provider),
                Token = token,
                TokenTypeHint = hint,
            }, cancellationToken);
            return !response.IsError;
        }
        catch (Exception exception) when (exception is HttpRequestException or TaskCanceledException)
        {
            LogRevokeFailed(logger, provider.Key, exception.Message);
            return false;
        }
    }

    /// <summary>The provider's userinfo answer, or null when it has no userinfo URL or the call fails (labels are a nicety).</summary>
    public async Task<JsonElement?> UserInfoAsync(ProviderDefinition provider, string accessToken, CancellationToken cancellationToken)
    {
        if (provider.UserinfoUrl is null)
        {
            return null;
        }
        try
        {
            var http = httpClients.CreateClient(ProviderHttpSetup.ClientName);
            using var request = new HttpRequestMessage(HttpMethod.Get, provider.UserinfoUrl);
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            using var response = await http.SendAsync(request, cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                return null;
            }
            using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
            return document.RootElement.Clone();
        }
        catch (Exception exception) when (exception is HttpRequestException or TaskCanceledException or JsonException)
        {
            return null;
        }
    }

    /// <summary>Reads a dotted path (<c>data.id</c>) from a JSON answer as text.</summary>
    public static string? ReadPath(JsonElement? root, string? path)
    {
        if (root is not { } element || string.IsNullOrEmpty(path))
        {
            return null;
        }
        foreach (var part in path.Split('.'))
        {
            if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(part, out element))
            {
                return null;
            }
        }
        return element.ValueKind switch
        {
            JsonValueKind.String => element.GetString(),
            JsonValueKind.Number => element.GetRawText(),
            _ => null,
        };
    }

    private async Task<ProviderTokens> WithRetriesAsync(ProviderDefinition provider, string operation, Func<HttpClient, Task<ProviderTokens>> call, CancellationToken cancellationToken)
    {
        var http = httpClients.CreateClient(ProviderHttpSetup.ClientName);
        var attempts = options.Value.ProviderAttempts;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await call(http);
            }
            catch (ProviderCallException exception) when (exception.Kind == ProviderFailureKind.Unavailable && attempt < attempts)
            {
                LogRetry(logger, provider.Key, operation, attempt);
            }
            catch (Exception exception) when (exception is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                if (attempt >= attempts)
                {
                    throw new ProviderCallException(ProviderFailureKind.Unavailable, $"{provider.Name} did not answer the {operation}: {exception.Message}");
                }
                LogRetry(logger, provider.Key, operation, attempt);
            }
            // Exponential backoff with jitter: 200 ms, 400 ms, 800 ms ...
            await Task.Delay(TimeSpan.FromMilliseconds(100 * Math.Pow(2, attempt) + Random.Shared.Next(50)), cancellationToken);
        }
    }

    private static ProviderTokens Read(ProviderDefinition provider, TokenResponse response)
    {
        var status = response.HttpStatusCode;
        if (response.ErrorType == ResponseErrorType.Exception && response.Exception is HttpRequestException or TaskCanceledException)
        {
            throw new ProviderCallException(ProviderFailureKind.Unavailable, $"{provider.Name}: {response.Exception.Message}");
        }
        if (status == HttpStatusCode.TooManyRequests || (int)status >= 500)
        {
            throw new ProviderCallException(ProviderFailureKind.Unavailable, $"{provider.Name} answered {(int)status}: {Describe(response.Raw)}");
        }

        var root = Parse(response.Raw);
        if (root is null)
        {
            throw new ProviderCallException(ProviderFailureKind.Refused, $"{provider.Name} answered {(int)status} with something that is neither JSON nor a form: {Describe(response.Raw)}");
        }
        var error = ProviderClient.ReadPath(root, "error");
        // Slack answers HTTP 200 with "ok": false.
        if (root.Value.TryGetProperty("ok", out var ok) && ok.ValueKind == JsonValueKind.False)
        {
            error ??= "unknown_error";
        }
        if (error is not null || !response.HttpResponse!.IsSuccessStatusCode)
        {
            var description = ReadPath(root, "error_description");
            var message = $"{provider.Name}: {error ?? ((int)status).ToString(System.Globalization.CultureInfo.InvariantCulture)}{(description is null ? "" : $" ({description})")}";
            var invalidGrant = error is "invalid_grant" or "invalid_refresh_token" or "token_revoked" or "token_expired" or "bad_refresh_token";
            throw new ProviderCallException(invalidGrant ? ProviderFailureKind.InvalidGrant : ProviderFailureKind.Refused, message);
        }

        var tokens = provider.TokenPath is { } path && root.Value.TryGetProperty(path, out var nested) && nested.ValueKind == JsonValueKind.Object ? nested : root.Value;
        var accessToken = ReadPath(tokens, "access_token")
                          ?? throw new ProviderCallException(ProviderFailureKind.Refused, $"{provider.Name} answered without an access token.");
        int? expiresIn = int.TryParse(ReadPath(tokens, "expires_in"), out var seconds) ? seconds : null;
        return new ProviderTokens(accessToken, ReadPath(tokens, "refresh_token"), expiresIn, ReadPath(tokens, "scope") ?? ReadPath(root, "scope"), root.Value);
    }

    /// <summary>JSON, or a form-encoded answer (GitHub without an Accept header) turned into a JSON object.</summary>
    private static JsonElement? Parse(string? raw)
    {
        if (string.IsNullOrWhiteSpace(raw))
        {
            return null;
        }
        var trimmed = raw.TrimStart();
        if (trimmed.StartsWith('{'))
        {
            try
            {
                using var document = JsonDocument.Parse(raw);
                return document.RootElement.Clone();
            }
            catch (JsonException)
            {
                return null;
            }
        }
        if (trimmed.StartsWith('<') || !raw.Contains('='))
        {
            return null;
        }
        var form = QueryHelpers.ParseQuery(raw.Trim());
        return JsonSerializer.SerializeToElement(form.ToDictionary(p => p.Key, p => p.Value.ToString()));
    }

    private static string Describe(string? raw) => raw is null ? "(empty)" : raw.Length > 200 ? raw[..200] + "…" : raw;

    private static ClientCredentialStyle Style(ProviderDefinition provider) =>
        provider.TokenAuth == "basic" ? ClientCredentialStyle.AuthorizationHeader : ClientCredentialStyle.PostBody;

    private static void AcceptJson(ProtocolRequest request) =>
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));

    // The provider's answer is not logged: it may carry secrets.
    [LoggerMessage(Level = LogLevel.Warning, Message = "Provider {Provider} {Operation} attempt {Attempt} failed; retrying")]
    private static partial void LogRetry(ILogger logger, string provider, string operation, int attempt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Revocation at provider {Provider} failed: {Reason}")]
    private static partial void LogRevokeFailed(ILogger logger, string provider, string reason);
}

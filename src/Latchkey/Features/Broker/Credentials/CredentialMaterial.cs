using System.Text;
using System.Text.Json;
using Latchkey.Common;
using Latchkey.Features.Broker.Providers;

namespace Latchkey.Features.Broker.Credentials;

/// <summary>What a caller sends to store a typed-in credential (API key, basic, bearer, headers) or to fetch a client-credentials token.</summary>
public sealed record CredentialCreateRequest(
    string? ProviderId, string? ApiKey, string? Token, string? Username, string? Password, Dictionary<string, string>? Headers,
    string? Label, string? EndUserId, string[]? Tags, string[]? Scopes, bool? Verify);

/// <summary>
/// The secret of a typed-in credential as stored (encrypted) in <see cref="Credential.AccessTokenCiphertext"/>,
/// and the headers an API call carries for any credential: the key, token or <c>user:password</c>
/// as typed, or for header credentials a JSON object of the headers.
/// </summary>
public static class CredentialMaterial
{
    public const int MaxSecretLength = 8000;

    /// <summary>The fields a person fills in to connect (the connect page's form, the provider's view).</summary>
    public static IReadOnlyList<string> Fields(ProviderDefinition definition) => definition.AuthType switch
    {
        AuthTypes.ApiKey => ["api_key"],
        AuthTypes.Bearer => ["token"],
        AuthTypes.Basic => [.. new[] { definition.BasicUsername is null ? "username" : null, definition.BasicPassword is null ? "password" : null }.OfType<string>()],
        AuthTypes.Header => definition.HeaderNames,
        _ => [],
    };

    /// <summary>A field's label on a page.</summary>
    public static string Label(string field) => field switch
    {
        "api_key" => "API key",
        "token" => "Access token",
        "username" => "User name",
        "password" => "Password",
        _ => field,
    };

    /// <summary>The request a page's form makes: its fields by name (<c>fields[api_key]</c>, <c>fields[X-App-Key]</c>, ...).</summary>
    public static CredentialCreateRequest FromForm(ProviderDefinition definition, string providerId, IReadOnlyDictionary<string, string> fields, string? endUserId, string[]? tags) =>
        new(providerId, fields.GetValueOrDefault("api_key"), fields.GetValueOrDefault("token"), fields.GetValueOrDefault("username"), fields.GetValueOrDefault("password"),
            definition.AuthType == AuthTypes.Header ? definition.HeaderNames.ToDictionary(n => n, n => fields.GetValueOrDefault(n, "")) : null,
            null, endUserId, tags, null, null);

    /// <summary>The secret to store from what the caller typed; or the problem.</summary>
    public static (string? Secret, string? Error) FromRequest(ProviderDefinition definition, CredentialCreateRequest request)
    {
        switch (definition.AuthType)
        {
            case AuthTypes.ApiKey:
                return Single(request.ApiKey ?? request.Token, "api_key");
            case AuthTypes.Bearer:
                return Single(request.Token ?? request.ApiKey, "token");
            case AuthTypes.Basic:
                var username = definition.BasicUsername ?? request.Username;
                var password = definition.BasicPassword ?? request.Password ?? request.ApiKey;
                if (string.IsNullOrEmpty(username) || string.IsNullOrEmpty(password) || username.Length + password.Length > MaxSecretLength)
                {
                    return (null, $"{definition.Name} takes {string.Join(" and ", Fields(definition))}.");
                }
                // RFC 7617: the user-id cannot contain a colon; the password may.
                return username.Contains(':') || HasControl(username) || HasControl(password)
                    ? (null, "username may not contain ':' and neither field may contain control characters.")
                    : ($"{username}:{password}", null);
            case AuthTypes.Header:
                var headers = request.Headers ?? [];
                var expected = definition.HeaderNames.ToHashSet(StringComparer.OrdinalIgnoreCase);
                if (!expected.SetEquals(headers.Keys) || headers.Values.Any(v => string.IsNullOrEmpty(v) || v.Length > MaxSecretLength || HasControl(v)))
                {
                    return (null, $"{definition.Name} takes 'headers' with exactly {string.Join(", ", definition.HeaderNames)}, each a non-empty single line.");
                }
                return (JsonSerializer.Serialize(definition.HeaderNames.ToDictionary(n => n, n => headers.First(h => string.Equals(h.Key, n, StringComparison.OrdinalIgnoreCase)).Value)), null);
            default:
                return (null, $"{definition.Name} is an {definition.AuthType} provider: connect it with /mcp/oauth/init.");
        }

        (string? Secret, string? Error) Single(string? value, string field) =>
            string.IsNullOrEmpty(value) ? (null, $"{definition.Name} takes '{field}'.")
            : value.Length > MaxSecretLength || HasControl(value) ? (null, $"'{field}' must be a single line of at most {MaxSecretLength} characters.")
            : (value, null);
    }

    /// <summary>
    /// The headers an API call carries: the credential in the provider's header and form, then the
    /// provider's fixed headers. <paramref name="secret"/> is the decrypted token or material.
    /// </summary>
    public static Dictionary<string, string> Headers(ProviderDefinition definition, string kind, string secret)
    {
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in definition.ExtraHeaders)
        {
            headers[name] = value;
        }
        if (kind == AuthTypes.Header)
        {
            foreach (var (name, value) in JsonSerializer.Deserialize<Dictionary<string, string>>(secret) ?? [])
            {
                headers[name] = value;
            }
        }
        else
        {
            headers[definition.EffectiveHeaderName] = definition.EffectiveHeaderPrefix + Value(kind, secret);
        }
        return headers;
    }

    /// <summary>The credential's one value as a tool would put it after the prefix: the token or key, or Basic's base64 <c>user:password</c>.</summary>
    public static string Value(string kind, string secret) => kind switch
    {
        AuthTypes.Basic => Convert.ToBase64String(Encoding.UTF8.GetBytes(secret)),
        AuthTypes.Header => JsonSerializer.Deserialize<Dictionary<string, string>>(secret)?.Values.FirstOrDefault() ?? "",
        _ => secret,
    };

    /// <summary>The <c>token_type</c> of an access-token read.</summary>
    public static string TokenType(string kind) => kind switch
    {
        AuthTypes.ApiKey => "ApiKey",
        AuthTypes.Basic => "Basic",
        AuthTypes.Header => "Header",
        _ => "Bearer",
    };

    private static bool HasControl(string value) => value.Any(char.IsControl);
}

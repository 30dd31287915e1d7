using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.WebUtilities;

namespace Latchkey.Tests.Infrastructure;

/// <summary>A registered OAuth app, as its owner received it.</summary>
public sealed record RegisteredApp(string ClientId, string? ClientSecret, string RedirectUri);

/// <summary>Tokens from a completed code flow, with who and what took part.</summary>
public sealed record IssuedTokens(TestAccount Owner, RegisteredApp App, TestAccount User, System.Text.Json.JsonElement Tokens)
{
    public string AccessToken => Tokens.GetProperty("access_token").GetString()!;
    public string RefreshToken => Tokens.GetProperty("refresh_token").GetString()!;
}

/// <summary>The result of an authorization request: the redirect back to the app, or the page shown instead.</summary>
public sealed record AuthorizationOutcome(HttpResponseMessage Response, Uri? Redirect, IReadOnlyDictionary<string, string> Query);

/// <summary>Drives OAuth flows against a Latchkey server the way a client app and a browser would.</summary>
public static partial class OAuthClient
{
    public const string RedirectUri = "https://app.example.com/callback";

    public static async Task<RegisteredApp> RegisterAppAsync(
        TestAccount owner, string[]? scopes = null, bool confidential = true, string redirectUri = RedirectUri, string name = "Test App")
    {
        var response = await owner.Session.PostAsJsonAsync("/api/oauth/apps", new
        {
            name,
            description = "An app used by the tests",
            homepage_url = "https://app.example.com",
            redirect_uris = new[] { redirectUri },
            scopes = scopes ?? ["IDENTITY", "READ_GRAPH", "openid", "profile", "email"],
            confidential,
        });
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var secret = body.RootElement.GetProperty("client_secret");
        return new RegisteredApp(
            body.RootElement.GetProperty("app").GetProperty("client_id").GetString()!,
            secret.ValueKind == JsonValueKind.String ? secret.GetString() : null,
            redirectUri);
    }

    public static (string Verifier, string Challenge) NewPkce()
    {
        var verifier = Base64Url(RandomNumberGenerator.GetBytes(32));
        return (verifier, Base64Url(SHA256.HashData(Encoding.ASCII.GetBytes(verifier))));
    }

    public static string AuthorizeUrl(RegisteredApp app, string scope, string challenge, string state = "xyz", string? redirectUri = null,
        string method = "S256", IDictionary<string, string?>? extra = null)
    {
        var parameters = new Dictionary<string, string?>
        {
            ["response_type"] = "code",
            ["client_id"] = app.ClientId,
            ["redirect_uri"] = redirectUri ?? app.RedirectUri,
            ["scope"] = scope,
            ["state"] = state,
            ["code_challenge"] = challenge,
            ["code_challenge_method"] = method,
        };
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
        {
            parameters[key] = value;
        }
        return QueryHelpers.AddQueryString("/auth/authorize", parameters.Where(p => p.Value is not null));
    }

    /// <summary>Opens the authorize URL in the user's browser session; approves or denies if a consent page appears.</summary>
    public static async Task<AuthorizationOutcome> AuthorizeAsync(HttpClient browser, string authorizeUrl, string? decision = "approve")
    {
        var response = await browser.GetAsync(authorizeUrl);
        if (response.StatusCode == HttpStatusCode.OK && decision is not null)
        {
            var html = await response.Content.ReadAsStringAsync();
            var form = HiddenInputs(html);
            form["decision"] = decision;
            response = await browser.PostAsync("/auth/authorize", new FormUrlEncodedContent(form));
        }
        return Outcome(response);
    }

    public static AuthorizationOutcome Outcome(HttpResponseMessage response)
    {
        if (response.StatusCode != HttpStatusCode.Redirect || response.Headers.Location is not { IsAbsoluteUri: true } location)
        {
            return new AuthorizationOutcome(response, response.Headers.Location, new Dictionary<string, string>());
        }
        var query = QueryHelpers.ParseQuery(location.Query).ToDictionary(p => p.Key, p => p.Value.ToString());
        return new AuthorizationOutcome(response, location, query);
    }

    /// <summary>Signs the user in (consent included) and returns an authorization code.</summary>
    public static async Task<(string Code, string Verifier)> GetCodeAsync(TestAccount user, RegisteredApp app, string scope = "IDENTITY")
    {
        var (verifier, challenge) = NewPkce();
        var outcome = await AuthorizeAsync(user.Session, AuthorizeUrl(app, scope, challenge));
        Assert.True(outcome.Query.ContainsKey("code"), $"No code: {outcome.Response.StatusCode} {outcome.Redirect} {await outcome.Response.Content.ReadAsStringAsync()}");
        return (outcome.Query["code"], verifier);
    }

    /// <summary>A new owner registers an app, a new user grants it <paramref name="scope"/>, and the code is redeemed.</summary>
    public static async Task<IssuedTokens> IssueAsync(LatchkeyServerFixture server, string scope = "IDENTITY")
    {
        var owner = await TestAccounts.SignUpAsync(server);
        var app = await RegisterAppAsync(owner);
        var user = await TestAccounts.SignUpAsync(server);
        var (code, verifier) = await GetCodeAsync(user, app, scope);
        return new IssuedTokens(owner, app, user, await RedeemCodeAsync(server.CreateClient(), app, code, verifier));
    }

    /// <summary>A client_credentials token request, the client authenticating with HTTP Basic.</summary>
    public static Task<HttpResponseMessage> ClientCredentialsAsync(LatchkeyServerFixture server, RegisteredApp app, string scope)
    {
        var client = server.CreateClient();
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Uri.EscapeDataString(app.ClientId)}:{Uri.EscapeDataString(app.ClientSecret!)}")));
        return client.PostAsync("/api/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["scope"] = scope,
        }));
    }

    public static Task<HttpResponseMessage> TokenAsync(HttpClient client, IDictionary<string, string> parameters, bool json = false) =>
        client.PostAsync("/api/oauth/token", json ? JsonContent.Create(parameters) : new FormUrlEncodedContent(parameters));

    public static async Task<JsonElement> RedeemCodeAsync(HttpClient client, RegisteredApp app, string code, string verifier, bool json = false)
    {
        var response = await TokenAsync(client, CodeParameters(app, code, verifier), json);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    public static Dictionary<string, string> CodeParameters(RegisteredApp app, string code, string verifier)
    {
        var parameters = new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code",
            ["code"] = code,
            ["redirect_uri"] = app.RedirectUri,
            ["client_id"] = app.ClientId,
            ["code_verifier"] = verifier,
        };
        if (app.ClientSecret is not null)
        {
            parameters["client_secret"] = app.ClientSecret;
        }
        return parameters;
    }

    public static Dictionary<string, string> RefreshParameters(RegisteredApp app, string refreshToken, string? scope = null)
    {
        var parameters = new Dictionary<string, string>
        {
            ["grant_type"] = "refresh_token",
            ["refresh_token"] = refreshToken,
            ["client_id"] = app.ClientId,
        };
        if (app.ClientSecret is not null)
        {
            parameters["client_secret"] = app.ClientSecret;
        }
        if (scope is not null)
        {
            parameters["scope"] = scope;
        }
        return parameters;
    }

    public static Dictionary<string, string> ClientParameters(RegisteredApp app, string token, string? hint = null)
    {
        var parameters = new Dictionary<string, string> { ["token"] = token, ["client_id"] = app.ClientId };
        if (app.ClientSecret is not null)
        {
            parameters["client_secret"] = app.ClientSecret;
        }
        if (hint is not null)
        {
            parameters["token_type_hint"] = hint;
        }
        return parameters;
    }

    public static async Task<JsonElement> IntrospectAsync(HttpClient client, RegisteredApp app, string token, bool json = false)
    {
        var parameters = ClientParameters(app, token);
        var response = await client.PostAsync("/api/oauth/introspect", json ? JsonContent.Create(parameters) : new FormUrlEncodedContent(parameters));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    public static Task<HttpResponseMessage> CallMeAsync(HttpClient client, string accessToken) =>
        client.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/external-api/v1/me")
        {
            Headers = { Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", accessToken) },
        });

    public static Dictionary<string, string> HiddenInputs(string html)
    {
        var fields = new Dictionary<string, string>();
        foreach (Match match in HiddenInput().Matches(html))
        {
            fields[WebUtility.HtmlDecode(match.Groups["name"].Value)] = WebUtility.HtmlDecode(match.Groups["value"].Value);
        }
        return fields;
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    [GeneratedRegex(""""<input[^>]*type="hidden"[^>]*name="(?<name>[^"]+)"[^>]*value="(?<value>[^"]*)"|<input[^>]*name="(?<name>[^"]+)"[^>]*type="hidden"[^>]*value="(?<value>[^"]*)"""")]
    private static partial Regex HiddenInput();
}

using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Latchkey.Bench;

/// <summary>What the workloads present: secrets and tokens created through Latchkey's own CLI and HTTP flows.</summary>
internal sealed record LatchkeySeed(
    string ClientId,
    string ClientSecret,
    string ApiKey,
    string ClientCredentialsToken,
    string UserAccessToken,
    string CredentialId);

/// <summary>
/// Seeds a Latchkey target the way a person would: the CLI creates a user, a confidential app
/// and an API key; a cookie session signs in, approves the app once and runs authorization-code
/// flows with PKCE; the broker connects a credential whose provider is this same Latchkey.
/// </summary>
internal sealed partial class LatchkeySeeder(LatchkeyTarget target)
{
    private const string Email = "bench@latchkey.test";
    private static readonly string[] ProviderScopes = ["IDENTITY"];
    private const string Password = "bench-password-0123456789";
    public const string RedirectUri = "http://127.0.0.1:9/callback";

    private readonly CookieContainer _cookies = new();
    private HttpClient? _browser;
    private HttpClient Browser => _browser ??= new HttpClient(new HttpClientHandler { CookieContainer = _cookies, AllowAutoRedirect = false })
    {
        BaseAddress = new Uri(target.BaseUrl),
    };

    public async Task<LatchkeySeed> SeedAsync()
    {
        await target.CliAsync(["users", "create", "--email", Email, "--name", "Bench", "--password-stdin"], Password + "\n");
        var app = await target.CliAsync(["apps", "create", "--owner", Email, "--name", "Bench app", "--redirect-uri", RedirectUri,
            "--scope", "IDENTITY", "--scope", "USE_TOOLS", "--confidential"]);
        var clientId = Field(app, "client_id");
        var clientSecret = Field(app, "client_secret");
        var key = await target.CliAsync(["keys", "create", "--user", Email, "--name", "bench", "--scope", "IDENTITY"]);
        var apiKey = ApiKeyLine().Match(key) is { Success: true } m ? m.Value : throw new InvalidOperationException("No API key in: " + key);

        await SignInAsync();
        var clientCredentials = await TokenAsync(clientId, clientSecret, new() { ["grant_type"] = "client_credentials", ["scope"] = "IDENTITY" });
        var user = await AuthorizationCodeAsync(clientId, clientSecret, "IDENTITY");
        var credentialId = await ConnectCredentialAsync(apiKey, clientId, clientSecret);
        return new LatchkeySeed(clientId, clientSecret, apiKey,
            clientCredentials.GetProperty("access_token").GetString()!,
            user.GetProperty("access_token").GetString()!,
            credentialId);
    }

    /// <summary>
    /// The PKCE verifier of every code <see cref="AuthorizationCodesAsync"/> makes: one for all is
    /// enough, since each code is still bound to its challenge and redeemed once.
    /// </summary>
    public const string CodeVerifier = "bench-pkce-verifier-0123456789abcdefghijklmnopqrstuvwxyz";

    /// <summary>
    /// The rest of the token request that redeems one of <see cref="AuthorizationCodesAsync"/>'s
    /// codes (the code itself goes last): a confidential app's code with PKCE, as a web server redeems it.
    /// </summary>
    public static string CodeRedemptionForm =>
        $"grant_type=authorization_code&redirect_uri={Uri.EscapeDataString(RedirectUri)}&code_verifier={CodeVerifier}";

    /// <summary>
    /// Authorization codes for the app, made the way a returning user's browser gets them: with the
    /// consent given at seeding, <c>GET /auth/authorize</c> with the session cookie answers a redirect
    /// carrying a new code at once. <paramref name="parallel"/> requests at a time, since every code
    /// is a database write and the workload needs thousands per sample.
    /// </summary>
    public async Task<List<string>> AuthorizationCodesAsync(LatchkeySeed seed, int count, int parallel)
    {
        var url = AuthorizeUrl(seed.ClientId, "IDENTITY", Challenge(CodeVerifier));
        var codes = new string[count];
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = parallel }, async (i, cancellationToken) =>
        {
            using var response = await Browser.GetAsync(url, cancellationToken);
            codes[i] = Code(response);
        });
        return [.. codes];
    }

    /// <summary>Refresh tokens, one per connection of a refresh-chain run: each from its own code flow.</summary>
    public async Task<List<string>> RefreshTokensAsync(LatchkeySeed seed, int count)
    {
        var codes = await AuthorizationCodesAsync(seed, count, parallel: 8);
        var tokens = new string[count];
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, _) =>
        {
            var issued = await TokenAsync(seed.ClientId, seed.ClientSecret, new()
            {
                ["grant_type"] = "authorization_code",
                ["code"] = codes[i],
                ["redirect_uri"] = RedirectUri,
                ["code_verifier"] = CodeVerifier,
            });
            tokens[i] = issued.GetProperty("refresh_token").GetString()!;
        });
        return [.. tokens];
    }

    private static string Field(string output, string name) =>
        Regex.Match(output, $@"^{name}:\s+(\S+)\s*$", RegexOptions.Multiline) is { Success: true } m
            ? m.Groups[1].Value
            : throw new InvalidOperationException($"No {name} in: {output}");

    private async Task SignInAsync()
    {
        var page = await Browser.GetStringAsync("/account/sign-in");
        using var response = await Browser.PostAsync("/account/sign-in", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Input.Email"] = Email,
            ["Input.Password"] = Password,
            ["__RequestVerificationToken"] = Antiforgery(page),
        }));
        if (response.StatusCode != HttpStatusCode.Redirect)
        {
            var html = await response.Content.ReadAsStringAsync();
            var problem = Regex.Match(html, "class=\"(?:error|field-error|alert)[^\"]*\"[^>]*>([^<]+)<");
            throw new InvalidOperationException($"Sign-in answered {(int)response.StatusCode}: {(problem.Success ? problem.Groups[1].Value : html[..Math.Min(html.Length, 2000)])}");
        }
    }

    private static string Antiforgery(string html) =>
        AntiforgeryInput().Match(html) is { Success: true } m ? WebUtility.HtmlDecode(m.Groups[1].Value) : throw new InvalidOperationException("No antiforgery token on the page.");

    /// <summary>Follows an authorization URL as the signed-in user, approving consent if asked; returns the code.</summary>
    private async Task<string> AuthorizeAsync(string url)
    {
        using var response = await Browser.GetAsync(url);
        if (response.StatusCode == HttpStatusCode.OK)
        {
            var html = await response.Content.ReadAsStringAsync();
            var fields = HiddenInput().Matches(html).ToDictionary(m => WebUtility.HtmlDecode(m.Groups[1].Value), m => WebUtility.HtmlDecode(m.Groups[2].Value));
            fields["__RequestVerificationToken"] = Antiforgery(html);
            fields["decision"] = "approve";
            using var approved = await Browser.PostAsync(url, new FormUrlEncodedContent(fields));
            return Code(approved);
        }
        return Code(response);
    }

    private static string Code(HttpResponseMessage response)
    {
        var location = response.Headers.Location?.ToString() ?? throw new InvalidOperationException($"Authorization answered {(int)response.StatusCode} without a redirect.");
        return Regex.Match(location, "[?&]code=([^&]+)") is { Success: true } m
            ? Uri.UnescapeDataString(m.Groups[1].Value)
            : throw new InvalidOperationException("The redirect carries no code: " + location);
    }

    private async Task<JsonElement> AuthorizationCodeAsync(string clientId, string clientSecret, string scope)
    {
        var verifier = Base64Url(RandomNumberGenerator.GetBytes(32));
        var code = await AuthorizeAsync(AuthorizeUrl(clientId, scope, Challenge(verifier)));
        return await TokenAsync(clientId, clientSecret, new()
        {
            ["grant_type"] = "authorization_code",
            ["code"] = code,
            ["redirect_uri"] = RedirectUri,
            ["code_verifier"] = verifier,
        });
    }

    private static string AuthorizeUrl(string clientId, string scope, string challenge) =>
        $"/auth/authorize?response_type=code&client_id={Uri.EscapeDataString(clientId)}&redirect_uri={Uri.EscapeDataString(RedirectUri)}" +
        $"&scope={Uri.EscapeDataString(scope)}&state=bench&code_challenge={challenge}&code_challenge_method=S256";

    private static string Challenge(string verifier) => Base64Url(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));

    private async Task<JsonElement> TokenAsync(string clientId, string clientSecret, Dictionary<string, string> parameters)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/oauth/token") { Content = new FormUrlEncodedContent(parameters) };
        request.Headers.TryAddWithoutValidation("Authorization", LoadRequest.Basic(clientId, clientSecret)["Authorization: ".Length..]);
        using var response = await Browser.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        return response.IsSuccessStatusCode
            ? JsonDocument.Parse(body).RootElement.Clone()
            : throw new InvalidOperationException($"Token endpoint answered {(int)response.StatusCode}: {body}");
    }

    /// <summary>A custom provider pointing at this Latchkey, and the broker's whole flow for one credential.</summary>
    private async Task<string> ConnectCredentialAsync(string apiKey, string clientId, string clientSecret)
    {
        using var broker = new HttpClient { BaseAddress = new Uri(target.BaseUrl) };
        broker.DefaultRequestHeaders.Add("X-API-Key", apiKey);
        var provider = await PostAsync(broker, "/mcp/providers", new
        {
            provider = "custom",
            client_id = clientId,
            client_secret = clientSecret,
            custom = new
            {
                name = "Latchkey (bench)",
                authorize_url = target.BaseUrl + "/auth/authorize",
                token_url = target.BaseUrl + "/api/oauth/token",
                default_scopes = ProviderScopes,
                token_auth = "basic",
                pkce = true,
                expires = true,
                refreshable = true,
            },
        });
        var init = await PostAsync(broker, "/mcp/oauth/init", new { provider_id = provider.GetProperty("id").GetString(), redirect_uri = RedirectUri });
        var state = init.GetProperty("state").GetString()!;
        var code = await AuthorizeAsync(init.GetProperty("auth_url").GetString()!);
        await PostAsync(broker, "/mcp/oauth/callback", new { code, state });
        var exchange = await PostAsync(broker, "/mcp/oauth/exchange-token", new { state });
        return exchange.GetProperty("credential_id").GetString()!;
    }

    /// <summary>
    /// An MCP server whose upstream is <paramref name="upstreamUrl"/>, with the seeded credential as
    /// its default and tool policies as a careful owner sets them (destructive tools denied, the
    /// measured tool allowed under an argument rule), so that an allowed call pays for the policy
    /// check: its gateway URL.
    /// </summary>
    public async Task<string> McpGatewayAsync(LatchkeySeed seed, string upstreamUrl)
    {
        using var client = new HttpClient { BaseAddress = new Uri(target.BaseUrl) };
        client.DefaultRequestHeaders.Add("X-API-Key", seed.ApiKey);
        var server = await PostAsync(client, "/mcp/servers", new { name = "Bench upstream", url = upstreamUrl, default_credential_id = seed.CredentialId });
        var id = server.GetProperty("id").GetString()!;
        await PutAsync(client, $"/mcp/servers/{id}/tools/delete_*/policy", new { action = "deny" });
        await PutAsync(client, $"/mcp/servers/{id}/tools/echo/policy", new { action = "allow", argument_rules = new[] { new { argument = "text", pattern = "[a-z]{1,64}" } } });
        return server.GetProperty("gateway_url").GetString()!;
    }

    private static async Task PutAsync(HttpClient client, string path, object body)
    {
        using var response = await client.PutAsJsonAsync(path, body);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"PUT {path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }
    }

    private static async Task<JsonElement> PostAsync(HttpClient client, string path, object body)
    {
        using var response = await client.PostAsJsonAsync(path, body);
        var text = await response.Content.ReadAsStringAsync();
        return response.IsSuccessStatusCode
            ? JsonDocument.Parse(text).RootElement.Clone()
            : throw new InvalidOperationException($"{path} answered {(int)response.StatusCode}: {text}");
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    [GeneratedRegex("lk_ak_[A-Za-z0-9]+")]
    private static partial Regex ApiKeyLine();

    [GeneratedRegex("name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryInput();

    [GeneratedRegex("<input type=\"hidden\" name=\"([^\"]+)\" value=\"([^\"]*)\"")]
    private static partial Regex HiddenInput();
}

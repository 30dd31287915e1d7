using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;

namespace Latchkey.Tests.Fuzz;

/// <summary>How an operation's body is shaped.</summary>
public enum BodyShape
{
    None,
    Json,
    Form,
    Image,
}

/// <summary>How an operation expects its caller to authenticate.</summary>
public enum CallerAuth
{
    None,
    Session,
    ApiKey,
    OAuthClient,
    Bearer,
}

/// <summary>One operation to fuzz: from the OpenAPI document, or an OAuth endpoint from discovery.</summary>
public sealed record FuzzTarget(string Method, string PathTemplate, BodyShape Body, CallerAuth Auth, IReadOnlyList<string> QueryParameters)
{
    public string Name => $"{Method} {PathTemplate}";

    /// <summary>Operations whose success would remove what the rest of the campaign needs: they get only decoy or junk ids.</summary>
    public bool Destroys => Method == "DELETE" || PathTemplate.EndsWith("/disable", StringComparison.Ordinal) ||
                            PathTemplate.EndsWith("/rotate-secret", StringComparison.Ordinal);
}

/// <summary>What the campaign's setup created: real ids to put in paths and bodies, and every secret it knows.</summary>
public sealed class FuzzWorld
{
    public required Uri ServerAddress { get; init; }
    public required string SessionCookie { get; init; }
    public required string ApiKey { get; init; }
    public required string ApiKeyId { get; init; }
    public required string DecoyApiKeyId { get; init; }
    public required string ForeignApiKeyId { get; init; }
    public required string ClientId { get; init; }
    public required string ClientSecret { get; init; }
    public required string DecoyClientId { get; init; }
    public required string ForeignClientId { get; init; }
    public required string RedirectUri { get; init; }
    public required string AccessToken { get; init; }

    /// <summary>Replaced when a refresh succeeds, so that a redeemed token is never sent again (which would revoke the grant, as it should).</summary>
    public required string RefreshToken { get; set; }

    public required string ProviderId { get; init; }
    public required string DecoyProviderId { get; init; }
    public required string ProviderSecret { get; init; }
    public required string CredentialId { get; init; }
    public required string DecoyCredentialId { get; init; }
    public required string FlowState { get; init; }
    public required string McpServerId { get; init; }
    public required string DecoyMcpServerId { get; init; }
    public required string UpstreamUrl { get; init; }
    public required string ProviderBaseUrl { get; init; }
    public required string InitialAccessToken { get; init; }

    /// <summary>Every secret the campaign knows, by what it is. None may appear in a response.</summary>
    public required KnownSecrets Secrets { get; init; }

    /// <summary>
    /// An owner with a session, an API key with every scope and a decoy key, two apps, tokens from a
    /// code flow and from client credentials, two broker providers and credentials (on the test
    /// provider), a pending broker flow, two MCP servers; and a second account with a key and an
    /// app, whose ids the owner must not reach.
    /// </summary>
    public static async Task<FuzzWorld> CreateAsync(LatchkeyServerFixture server, TestOAuthProvider provider, TestMcpUpstream upstream)
    {
        var secrets = new KnownSecrets();
        var cookies = new CookieContainer();
        var session = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = cookies }) { BaseAddress = server.BaseAddress };
        var email = TestAccounts.NewEmail();
        var signUp = await Browser.SubmitFormAsync(session, "/account/sign-up", new Dictionary<string, string>
        {
            ["Input.Email"] = email,
            ["Input.DisplayName"] = "Fuzz Owner",
            ["Input.TimeZone"] = "Europe/Berlin",
            ["Input.Password"] = TestAccounts.Password,
            ["Input.ConfirmPassword"] = TestAccounts.Password,
        });
        Assert.Equal(HttpStatusCode.Redirect, signUp.StatusCode);
        var owner = new TestAccount(email, TestAccounts.Password, "Fuzz Owner", session);
        secrets.Add("password", TestAccounts.Password);

        using var scopeList = JsonDocument.Parse(await session.GetStringAsync("/api/scopes"));
        var scopes = scopeList.RootElement.GetProperty("scopes").EnumerateArray().Select(s => s.GetProperty("name").GetString()!).ToArray();
        var (apiKey, apiKeyId) = await TestAccounts.CreateKeyAsync(owner, scopes);
        var (decoyKey, decoyKeyId) = await TestAccounts.CreateKeyAsync(owner, "IDENTITY");
        secrets.Add("API key", apiKey);
        secrets.Add("decoy API key", decoyKey);

        var foreigner = await TestAccounts.SignUpAsync(server);
        var (foreignKey, foreignKeyId) = await TestAccounts.CreateKeyAsync(foreigner, "IDENTITY");
        var foreignApp = await OAuthClient.RegisterAppAsync(foreigner);
        secrets.Add("foreign API key", foreignKey);
        secrets.Add("foreign client secret", foreignApp.ClientSecret);

        var app = await OAuthClient.RegisterAppAsync(owner);
        var decoyApp = await OAuthClient.RegisterAppAsync(owner, name: "Decoy App");
        secrets.Add("client secret", app.ClientSecret);
        secrets.Add("decoy client secret", decoyApp.ClientSecret);
        var (code, verifier) = await OAuthClient.GetCodeAsync(owner, app, "IDENTITY READ_GRAPH");
        secrets.Add("authorization code", code);
        secrets.Add("PKCE verifier", verifier);
        var tokens = await OAuthClient.RedeemCodeAsync(server.CreateClient(), app, code, verifier);
        var accessToken = tokens.GetProperty("access_token").GetString()!;
        var refreshToken = tokens.GetProperty("refresh_token").GetString()!;
        secrets.Add("access token", accessToken);
        secrets.Add("refresh token", refreshToken);
        var clientCredentials = await OAuthClient.TokenAsync(server.CreateClient(), new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = app.ClientId, ["client_secret"] = app.ClientSecret!, ["scope"] = "READ_GRAPH",
        });
        Assert.Equal(HttpStatusCode.OK, clientCredentials.StatusCode);
        using (var issued = JsonDocument.Parse(await clientCredentials.Content.ReadAsStringAsync()))
        {
            secrets.Add("client credentials access token", issued.RootElement.GetProperty("access_token").GetString());
        }

        var caller = new BrokerCaller(server.CreateClient(), email, apiKey, owner);
        caller.Client.DefaultRequestHeaders.Add("X-API-Key", apiKey);
        var providerId = await TestBroker.AddProviderAsync(caller, provider);
        var decoyProviderId = await TestBroker.AddProviderAsync(caller, provider);
        var credentialId = await TestBroker.ConnectedCredentialAsync(caller, provider);
        secrets.Add("provider access token", provider.LastIssuedAccessToken);
        secrets.Add("provider refresh token", provider.LastIssuedRefreshToken);
        var decoyCredentialId = await TestBroker.ConnectedCredentialAsync(caller, provider);
        secrets.Add("decoy provider access token", provider.LastIssuedAccessToken);
        secrets.Add("decoy provider refresh token", provider.LastIssuedRefreshToken);
        secrets.Add("provider client secret", TestOAuthProvider.ClientSecret);
        var pending = await TestBroker.PostAsync(caller, "/mcp/oauth/init", new { provider_id = providerId, redirect_uri = "https://agent.example.com/done" });

        var servers = new List<string>();
        foreach (var name in new[] { "Fuzz tools", "Decoy tools" })
        {
            var created = await caller.Client.PostAsJsonAsync("/mcp/servers", new { name, url = upstream.Endpoint.AbsoluteUri, default_credential_id = credentialId });
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            using var body = JsonDocument.Parse(await created.Content.ReadAsStringAsync());
            servers.Add(body.RootElement.GetProperty("id").GetString()!);
        }

        using (var keyFile = JsonDocument.Parse(await File.ReadAllTextAsync(server.VaultKeyFile)))
        {
            foreach (var key in keyFile.RootElement.GetProperty("Keys").EnumerateObject())
            {
                secrets.Add($"vault master key {key.Name}", key.Value.GetString());
                secrets.Add($"vault master key {key.Name} (hex)", Convert.ToHexString(Convert.FromBase64String(key.Value.GetString()!)));
            }
        }
        var sessionCookie = cookies.GetCookieHeader(server.BaseAddress);
        secrets.Add("session cookie", cookies.GetCookies(server.BaseAddress).FirstOrDefault(c => c.Name == "latchkey.session")?.Value);
        secrets.Add("initial access token", LatchkeyServerFixture.InitialAccessToken);
        var providerSecret = "fuzz-provider-secret-" + Guid.NewGuid().ToString("N");
        secrets.Add("fuzz provider secret", providerSecret);

        return new FuzzWorld
        {
            ServerAddress = server.BaseAddress,
            SessionCookie = sessionCookie,
            ApiKey = apiKey,
            ApiKeyId = apiKeyId,
            DecoyApiKeyId = decoyKeyId,
            ForeignApiKeyId = foreignKeyId,
            ClientId = app.ClientId,
            ClientSecret = app.ClientSecret!,
            DecoyClientId = decoyApp.ClientId,
            ForeignClientId = foreignApp.ClientId,
            RedirectUri = app.RedirectUri,
            AccessToken = accessToken,
            RefreshToken = refreshToken,
            ProviderId = providerId,
            DecoyProviderId = decoyProviderId,
            ProviderSecret = providerSecret,
            CredentialId = credentialId,
            DecoyCredentialId = decoyCredentialId,
            FlowState = pending.GetProperty("state").GetString()!,
            McpServerId = servers[0],
            DecoyMcpServerId = servers[1],
            UpstreamUrl = upstream.Endpoint.AbsoluteUri,
            ProviderBaseUrl = provider.BaseAddress.AbsoluteUri,
            InitialAccessToken = LatchkeyServerFixture.InitialAccessToken,
            Secrets = secrets,
        };
    }
}

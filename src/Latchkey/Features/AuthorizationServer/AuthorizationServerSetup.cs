using Latchkey.Cluster;
using Latchkey.Common;
using Latchkey.Features.AuthorizationServer.Apps;
using Latchkey.Features.AuthorizationServer.Grants;
using Latchkey.Features.AuthorizationServer.Handlers;
using Latchkey.Features.AuthorizationServer.Keys;
using Latchkey.Features.AuthorizationServer.Stores;
using Latchkey.Features.AuthorizationServer.Tokens;
using Latchkey.Features.ExternalApi;
using Latchkey.Features.Operations;
using Latchkey.Features.Scopes;
using Latchkey.Storage;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;

using OidcScopes = OpenIddict.Abstractions.OpenIddictConstants.Scopes;

namespace Latchkey.Features.AuthorizationServer;

public static class AuthorizationServerSetup
{
    public const string AuthorizePath = "/auth/authorize";
    public const string TokenPath = "/api/oauth/token";
    public const string IntrospectPath = "/api/oauth/introspect";
    public const string RevokePath = "/api/oauth/revoke";
    public const string UserInfoPath = "/api/oauth/userinfo";
    public const string RegisterPath = "/api/oauth/register";
    public const string PushedAuthorizationPath = "/api/oauth/par";
    public const string DeviceAuthorizationPath = "/api/oauth/device";
    public const string DeviceVerificationPath = "/device";

    /// <summary>
    /// User codes of the device flow: 8 letters from 20 consonants (RFC 8628 §6.1: no vowels, so no
    /// words; no digits, so nothing to confuse), shown as ABCD-EFGH. 20^8 is 2.6e10 codes, against
    /// a guesser held back by the rate limits and a 10-minute lifetime.
    /// </summary>
    public static readonly string[] UserCodeCharset = [.. "BCDFGHJKLMNPQRSTVWXZ".Select(c => c.ToString())];

    /// <summary>The OpenID Connect scopes offered beside the scope catalog.</summary>
    public static readonly string[] OpenIdScopes = [OidcScopes.OpenId, OidcScopes.Profile, OidcScopes.Email, OidcScopes.OfflineAccess];

    /// <summary>OpenIddict (server and EF Core stores) with Latchkey's token format, keys, and wire compatibility.</summary>
    public static WebApplicationBuilder AddAuthorizationServer(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<IValidateOptions<AuthorizationServerOptions>, AuthorizationServerOptionsValidator>();
        builder.Services.AddOptions<AuthorizationServerOptions>().BindConfiguration(AuthorizationServerOptions.SectionName)
            .ValidateDataAnnotations().ValidateOnStart();
        // Common's ServerAddress answers with the issuer when one is configured.
        builder.Services.AddOptions<ServerAddressOptions>().Configure<IOptions<AuthorizationServerOptions>>((address, server) =>
            address.Issuer = server.Value.Issuer);
        var settings = builder.Configuration.GetSection(AuthorizationServerOptions.SectionName).Get<AuthorizationServerOptions>() ?? new();
        var catalog = builder.Configuration.GetSection(ScopeCatalogOptions.SectionName).Get<ScopeCatalogOptions>() ?? new();
        var scopeNames = (catalog.Catalog.Count > 0 ? catalog.Catalog : ScopeCatalogOptions.Defaults).Select(s => s.Name);

        builder.Services.AddScoped<ServerKeyRing>();
        builder.Services.AddSingleton<IConfigureOptions<OpenIddictServerOptions>, ServerKeyOptionsSetup>();
        builder.Services.AddSingleton<ServerKeySet>();
        builder.Services.AddSingleton<IOptionsChangeTokenSource<OpenIddictServerOptions>>(services => services.GetRequiredService<ServerKeySet>());
        builder.Services.AddHostedService<ServerKeyWarmUp>();
        builder.Services.AddScoped(services => (OAuthApplicationManager)services.GetRequiredService<OpenIddict.Core.OpenIddictApplicationManager<OAuthApplication>>());
        builder.Services.AddScoped<OAuthPrincipals>();
        builder.Services.AddScoped<OAuthAppService>();
        builder.Services.AddScoped<ClientMetadataDocuments>();
        builder.Services.AddSingleton<DPoPProofs>();
        builder.Services.AddMemoryCache();
        builder.Services.AddOutboundAddressGuard();
        builder.Services.AddHttpClient(ClientMetadataDocuments.HttpClientName)
            .ConfigurePrimaryHttpMessageHandler(services => services.GetRequiredService<OutboundAddressGuard>()
                .CreateHandler(services.GetRequiredService<IOptions<AuthorizationServerOptions>>().Value.ClientMetadataDocuments.AllowPrivateNetworks, "AuthorizationServer:ClientMetadataDocuments:AllowPrivateNetworks"))
            .ConfigureHttpClient(client => client.DefaultRequestHeaders.UserAgent.ParseAdd("Latchkey/1.0"));
        builder.Services.AddScoped<Latchkey.Features.Site.IContentSecurityPolicyContributor, AuthorizeFormTargets>();
        builder.Services.AddSingleton<AnonymousRegistrationScopes>();
        builder.Services.AddSingleton<PlatformNames>();
        builder.Services.AddScoped<UserGrants>();
        builder.Services.TryAddSingleton<Handlers.DevicePolling>();
        builder.Services.AddScoped<IAccessTokenValidator, AccessTokenValidator>();
        builder.Services.AddSingleton<TokenCommitQueue>();
        builder.Services.AddSingleton<DirectTokenGrants>();
        builder.Services.AddSnapshotCache<AccessTokenSnapshot>(CacheScope.OAuth);
        builder.Services.AddSnapshotCache<IntrospectionAnswer>(CacheScope.OAuth);
        builder.Services.AddSnapshotCache<OAuthApplicationSnapshot>(CacheScope.OAuth);
        // Issuing a token updates its row (and its authorization's) while it stays valid, and redeeming a
        // code or a refresh token marks it redeemed: no cached answer changes (only access tokens are cached).
        builder.Services.AddCacheInvalidation<OAuthToken>(CacheScope.OAuth, unchangedWhenModified: token => token.Status is Statuses.Valid or Statuses.Redeemed);
        builder.Services.AddCacheInvalidation<OAuthAuthorization>(CacheScope.OAuth, unchangedWhenModified: authorization => authorization.Status == Statuses.Valid);
        builder.Services.AddCacheInvalidation<OAuthApplication>(CacheScope.OAuth);
        // A new server key is a rotation, which every node must load.
        builder.Services.AddCacheInvalidation<ServerKey>(CacheScope.ServerKeys, onInsert: true);
        builder.Services.AddSummarizedTable<OAuthApplication>("OAuth apps");
        builder.Services.AddSummarizedTable<OAuthAuthorization>("OAuth authorizations");
        builder.Services.AddSummarizedTable<OAuthToken>("OAuth tokens");
        builder.Services.AddSummarizedTable<ServerKey>("server keys");

        builder.Services.AddOpenIddict()
            .AddCore(core =>
            {
                core.UseEntityFrameworkCore()
                    .UseDbContext<LatchkeyDbContext>()
                    .ReplaceDefaultEntities<OAuthApplication, OAuthAuthorization, OAuthScope, OAuthToken, string>();
                core.ReplaceApplicationManager<OAuthApplication, OAuthApplicationManager>();
                core.ReplaceTokenManager<OAuthToken, OAuthTokenManager>();
            })
            .AddServer(server =>
            {
                server.SetAuthorizationEndpointUris(AuthorizePath[1..])
                    .SetTokenEndpointUris(TokenPath[1..])
                    .SetIntrospectionEndpointUris(IntrospectPath[1..])
                    .SetRevocationEndpointUris(RevokePath[1..])
                    .SetUserInfoEndpointUris(UserInfoPath[1..])
                    .SetPushedAuthorizationEndpointUris(PushedAuthorizationPath[1..])
                    .SetDeviceAuthorizationEndpointUris(DeviceAuthorizationPath[1..])
                    .SetEndUserVerificationEndpointUris(DeviceVerificationPath[1..])
                    .SetJsonWebKeySetEndpointUris(".well-known/jwks");

                server.AllowAuthorizationCodeFlow().AllowRefreshTokenFlow().AllowClientCredentialsFlow().AllowDeviceAuthorizationFlow()
                    .AllowTokenExchangeFlow();
                server.SetUserCodeCharset(UserCodeCharset).SetUserCodeLength(8).SetUserCodeDisplayFormat("{0}{1}{2}{3}-{4}{5}{6}{7}");
                // OAuth 2.1: PKCE for every client, S256 only.
                server.RequireProofKeyForCodeExchange();
                server.Configure(options => options.CodeChallengeMethods.Remove(CodeChallengeMethods.Plain));

                server.RegisterScopes([.. scopeNames, .. OpenIdScopes]);
                // Every app may use every endpoint; what an app may do is decided by its grant
                // types and scopes, which are checked. (Apps registered before an endpoint existed
                // would otherwise lack its permission.)
                server.IgnoreEndpointPermissions();

                // Pushed authorization requests (RFC 9126): for every app when configured, else for
                // the apps that require them. A pushed request is good for one sign-in, for as long
                // as a code lives, so that signing in or up on the way does not outlast it.
                if (settings.RequirePushedAuthorizationRequests)
                {
                    server.RequirePushedAuthorizationRequests();
                }
                server.Configure(options => options.RequestTokenLifetime = TimeSpan.FromMinutes(settings.AuthorizationCodeLifetimeMinutes));
                // RFC 8707: any absolute resource URI may be asked for; it becomes the token's audience.
                server.DisableResourceValidation().IgnoreResourcePermissions();

                server.SetAccessTokenLifetime(TimeSpan.FromMinutes(settings.AccessTokenLifetimeMinutes))
                    .SetIdentityTokenLifetime(TimeSpan.FromMinutes(settings.AccessTokenLifetimeMinutes))
                    .SetRefreshTokenLifetime(TimeSpan.FromDays(settings.RefreshTokenLifetimeDays))
                    .SetAuthorizationCodeLifetime(TimeSpan.FromMinutes(settings.AuthorizationCodeLifetimeMinutes));

                server.UseReferenceRefreshTokens();
                if (settings.UsesJwtAccessTokens)
                {
                    // Signed (not encrypted) JWTs that resource servers can check against the JWKS.
                    server.DisableAccessTokenEncryption();
                }
                else
                {
                    server.UseReferenceAccessTokens();
                }
                if (!string.IsNullOrEmpty(settings.Issuer))
                {
                    server.SetIssuer(settings.Issuer);
                }

                // Latchkey's handlers in OpenIddict's pipeline (Handlers/): token storage, request
                // parsing, client policy, wire compatibility, the security log.
                server.AddLatchkeyHandlers();

                server.UseAspNetCore()
                    .EnableAuthorizationEndpointPassthrough()
                    .EnableTokenEndpointPassthrough()
                    .EnableUserInfoEndpointPassthrough()
                    .EnableEndUserVerificationEndpointPassthrough()
                    .EnableErrorPassthrough()
                    // TLS is usually terminated in front of Latchkey; see docs/operations.md.
                    .DisableTransportSecurityRequirement();

                // Client assertions (private_key_jwt) are not offered: no app can register the keys
                // they are checked with, so discovery does not name them and they are refused.
                // Configured after UseAspNetCore, whose own configuration adds client_secret_basic.
                server.Configure(options =>
                {
                    options.ClientAuthenticationMethods.Remove(ClientAuthenticationMethods.PrivateKeyJwt);
                    options.ClientAssertionTypes.Remove(ClientAssertionTypes.JwtBearer);
                });
            });

        builder.Services.AddOpenIddictEndpointGate();
        builder.Services.AddCleanupTask<TokenCleanup>();
        return builder;
    }

    /// <summary>
    /// Before authentication: repeated introspection questions are answered from the cache (see
    /// IntrospectionCache), the hot grants by Latchkey's own handler (DirectTokenGrants), and only
    /// then does OpenIddict see the requests for its endpoints (OpenIddictEndpointGate).
    /// </summary>
    public static WebApplication UseAuthorizationServer(this WebApplication app) =>
        app.UseIntrospectionCache().UseDirectTokenGrants().UseOpenIddictEndpoints();

    public static WebApplication MapAuthorizationServer(this WebApplication app)
    {
        app.MapTokenEndpoint();
        app.MapUserInfoEndpoint();
        app.MapOAuthAppEndpoints();
        app.MapUserGrantEndpoints();
        app.MapClientRegistrationEndpoints();
        return app;
    }
}

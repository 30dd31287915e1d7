using System.Collections.Frozen;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text.Json;
using Latchkey.Cluster;
using Latchkey.Common;
using Latchkey.Features.AuthorizationServer.Apps;
using Latchkey.Features.AuthorizationServer.Grants;
using Latchkey.Features.AuthorizationServer.Stores;
using Latchkey.Features.SecurityEvents;
using Latchkey.Features.Telemetry;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;

using OidcScopes = OpenIddict.Abstractions.OpenIddictConstants.Scopes;

namespace Latchkey.Features.AuthorizationServer.Tokens;

/// <summary>
/// Latchkey's own handling of the hot grants, <c>client_credentials</c>, <c>refresh_token</c> and
/// <c>authorization_code</c>, in front of OpenIddict's token endpoint. A profile of issuance put about
/// half the CPU in OpenIddict's generic event dispatch (some forty events a request), and every
/// token was its own transaction. Here a request that will plainly succeed is checked in one pass
/// (client, grant, scopes; for a refresh or a code, the token, its authorization and its user in
/// one indexed read, and a code's payload through OpenIddict's own token validation), and its tokens are written by the group commit (<see cref="TokenCommitQueue"/>) before
/// it answers, in the same rows and the same answer OpenIddict would give.
///
/// It only ever answers success. Anything else, or anything unusual (a DPoP proof, a JSON body, a
/// narrowed or OpenID scope, a resource, a code bound to a DPoP key, an app with its own token lifetimes, a client named by a
/// metadata document, a bound token, an app not in the cache yet, a refresh token redeemed
/// meanwhile), goes to OpenIddict untouched, which answers it as before: every error, and every
/// rule this class does not repeat, stays OpenIddict's.
/// </summary>
internal sealed class DirectTokenGrants(
    SnapshotCache<OAuthApplicationSnapshot> applications,
    TokenCommitQueue commits,
    SecurityEventLog securityEvents,
    LatchkeyMetrics metrics,
    TimeProvider time,
    IOptions<AuthorizationServerOptions> options,
    IOptionsMonitor<OpenIddictServerOptions> serverOptions)
{
    private static readonly FrozenSet<string> ClientCredentialsParameters =
        FrozenSet.Create(StringComparer.Ordinal, Parameters.GrantType, Parameters.Scope, Parameters.ClientId, Parameters.ClientSecret);

    private static readonly FrozenSet<string> RefreshParameters =
        FrozenSet.Create(StringComparer.Ordinal, Parameters.GrantType, Parameters.RefreshToken, Parameters.ClientId, Parameters.ClientSecret);

    private static readonly FrozenSet<string> CodeParameters = FrozenSet.Create(StringComparer.Ordinal,
        Parameters.GrantType, Parameters.Code, Parameters.RedirectUri, Parameters.CodeVerifier, Parameters.ClientId, Parameters.ClientSecret);

    private static readonly ConditionalWeakTable<OAuthApplicationSnapshot, DirectGrantClient> Clients = [];

    // Compiled once per model (a compiled query keeps the executor of the first model it met; tests
    // run SQLite and PostgreSQL in one process): EF Core's per-query expression work was a fifth of
    // a refresh's CPU in the profile.
    private static readonly ConditionalWeakTable<Microsoft.EntityFrameworkCore.Metadata.IModel, CompiledQueries> QueriesByModel = [];

    private sealed class CompiledQueries
    {
        /// <summary>
        /// A refresh token or code by its stored reference id, with its authorization's status and its
        /// user's lockout, in one statement: on PostgreSQL each statement is a round trip and a turn of
        /// a backend, and a refresh made two.
        /// </summary>
        public readonly Func<LatchkeyDbContext, string, Task<StoredGrant?>> FindGrantAsync =
            EF.CompileAsyncQuery((LatchkeyDbContext db, string referenceId) => db.OAuthTokens.AsNoTracking()
                .Where(token => token.ReferenceId == referenceId)
                .LeftJoin(db.Users, token => token.Subject, user => user.Id, (token, user) => new StoredGrant(token.Id!, token.Type, token.Status,
                    token.Subject, token.ExpirationDate, token.Properties, token.Payload != null, EF.Property<string?>(token, "ApplicationId"),
                    EF.Property<string?>(token, "AuthorizationId"), token.Authorization != null ? token.Authorization.Status : null,
                    user != null, user != null && user.LockoutEnabled, user != null ? user.LockoutEnd : null))
                .FirstOrDefault());
    }

    private long _answered;

    /// <summary>How many requests this node answered itself (the rest went to OpenIddict).</summary>
    public long Answered => Interlocked.Read(ref _answered);

    /// <summary>Answers the request and returns true, or returns false having changed nothing (OpenIddict then handles it).</summary>
    public async Task<bool> TryHandleAsync(HttpContext context)
    {
        var request = context.Request;
        if (!IsPlainForm(request) || request.Headers.ContainsKey(Common.DPoPScheme.ProofHeader))
        {
            return false;
        }
        if (await RequestForms.TryReadAsync(request, context.RequestAborted) is not { } form)
        {
            return false;
        }
        var grantType = Single(form, Parameters.GrantType);
        var allowed = grantType switch
        {
            GrantTypes.ClientCredentials => ClientCredentialsParameters,
            GrantTypes.RefreshToken => RefreshParameters,
            GrantTypes.AuthorizationCode => CodeParameters,
            _ => null,
        };
        if (allowed is null || !form.All(field => field.Value.Count == 1 && allowed.Contains(field.Key))
            || Authenticate(request, form) is not { } client || !client.Permissions.Contains(Permissions.Prefixes.GrantType + grantType))
        {
            return false;
        }
        var now = time.GetUtcNow();
        var issued = grantType switch
        {
            GrantTypes.ClientCredentials => IssueForClient(client, Single(form, Parameters.Scope), now),
            GrantTypes.RefreshToken => await IssueForRefreshAsync(context, client, Single(form, Parameters.RefreshToken), now),
            _ => await IssueForCodeAsync(context, client, form, now),
        };
        if (issued is null)
        {
            return false;
        }

        var write = new TokenWrite(issued.Rows, issued.RedeemedTokenId);
        if (await commits.WriteAsync(write) != TokenWriteOutcome.Committed)
        {
            return false;
        }
        RecordIssued(client, grantType!, issued);
        await WriteAnswerAsync(context.Response, issued, now);
        Interlocked.Increment(ref _answered);
        return true;
    }

    private static bool IsPlainForm(HttpRequest request) =>
        HttpMethods.IsPost(request.Method)
        && MediaTypeHeaderValue.TryParse(request.ContentType, out var type)
        && string.Equals(type.MediaType, "application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase);

    private static string? Single(IFormCollection form, string name) =>
        form.TryGetValue(name, out var values) && values.Count == 1 ? values[0] : null;

    /// <summary>The client, when it proves who it is in one of the usual ways and is an app this node knows and may answer for directly.</summary>
    private DirectGrantClient? Authenticate(HttpRequest request, IFormCollection form)
    {
        string? clientId, secret;
        var authorization = request.Headers.Authorization;
        if (authorization.Count > 0)
        {
            if (authorization.Count != 1 || form.ContainsKey(Parameters.ClientId) || form.ContainsKey(Parameters.ClientSecret))
            {
                return null;
            }
            (clientId, secret) = Common.BasicClientCredentials.Parse(authorization[0]);
        }
        else
        {
            clientId = Single(form, Parameters.ClientId);
            secret = Single(form, Parameters.ClientSecret);
        }
        if (string.IsNullOrEmpty(clientId) || ClientMetadataDocuments.IsDocumentUrl(clientId)
            || !applications.TryGet(clientId, out var snapshot))
        {
            return null;
        }
        var client = Clients.GetValue(snapshot, DirectGrantClient.Of);
        if (!client.Enabled || client.HasOwnTokenSettings)
        {
            return null;
        }
        return client.IsConfidential
            ? secret is not null && OAuthApplicationManager.SecretMatches(secret, client.SecretHash) ? client : null
            : secret is null ? client : null;
    }

    private IssuedTokens? IssueForClient(DirectGrantClient client, string? scope, DateTimeOffset now)
    {
        if (!client.IsConfidential)
        {
            return null;
        }
        string[] scopes;
        if (scope is null)
        {
            // RFC 6749 §3.3's pre-defined default: the app's registered scopes, never the OpenID ones (as TokenEndpoint does).
            scopes = client.DefaultClientScopes;
        }
        else
        {
            scopes = [.. scope.Split(' ', StringSplitOptions.RemoveEmptyEntries).Distinct(StringComparer.Ordinal)];
            var registered = serverOptions.CurrentValue.Scopes;
            if (scopes.Length == 0 || scope.Any(char.IsControl) || scopes.Any(s => AuthorizationServerSetup.OpenIdScopes.Contains(s)
                || !registered.Contains(s) || !client.Permissions.Contains(Permissions.Prefixes.Scope + s)))
            {
                return null;
            }
        }
        var access = NewToken(client, TokenTypeIdentifiers.AccessToken, client.ClientId, authorizationId: null, now, AccessTokenLifetime,
            StoredTokenClaims.Serialize(scopes, [], [client.ClientId], [], null, []));
        return new IssuedTokens(client.ClientId, access, null, scopes, null);
    }

    private async Task<IssuedTokens?> IssueForRefreshAsync(HttpContext context, DirectGrantClient client, string? refreshToken, DateTimeOffset now)
    {
        if (refreshToken is null || !TokenFormats.RefreshToken.IsWellFormed(refreshToken))
        {
            return null;
        }
        var (db, queries) = Database(context);
        var stored = await queries.FindGrantAsync(db, TokenFormats.StoredReferenceId(refreshToken));
        if (!IsRedeemable(stored, TokenTypeIdentifiers.RefreshToken, client, now) || stored.HasPayload
            || stored.Subject is null || string.IsNullOrEmpty(stored.Properties))
        {
            return null;
        }

        using var document = JsonDocument.Parse(stored.Properties);
        var properties = document.RootElement;
        if (!StoredTokenClaims.IsComplete(properties) || properties.TryGetProperty(TokenFormats.KeyThumbprintProperty, out _))
        {
            return null;
        }
        var scopes = StoredTokenClaims.ReadArray(properties, TokenFormats.ScopesProperty);
        var resources = StoredTokenClaims.ReadArray(properties, StoredTokenClaims.ResourcesProperty);
        var presenters = StoredTokenClaims.ReadArray(properties, StoredTokenClaims.PresentersProperty);
        var claims = properties.GetProperty(StoredTokenClaims.ClaimsProperty);
        var offlineImplied = false;
        foreach (var claim in claims.EnumerateArray())
        {
            // Only the implied offline_access is carried over here; a DPoP key or an actor is OpenIddict's to handle.
            if (claim.ValueKind != JsonValueKind.Array || claim.GetArrayLength() != 3 || claim[0].GetString() != OAuthPrincipals.OfflineAccessImpliedClaim)
            {
                return null;
            }
            offlineImplied = true;
        }
        if (scopes.Contains(OidcScopes.OpenId) || !presenters.Contains(client.ClientId))
        {
            return null;
        }

        return IssueForUser(client, stored, stored.Subject, scopes, resources, offlineImplied, now);
    }

    /// <summary>
    /// An authorization code (RFC 6749 §4.1.3) with its PKCE verifier (RFC 7636 §4.6) and the
    /// redirect URI it was issued for. The code itself is OpenIddict's (an encrypted payload behind
    /// a reference), read through OpenIddict's own token validation; the redemption is a
    /// conditional update in the group commit like a refresh token's.
    /// </summary>
    private async Task<IssuedTokens?> IssueForCodeAsync(HttpContext context, DirectGrantClient client, IFormCollection form, DateTimeOffset now)
    {
        if (Single(form, Parameters.Code) is not { Length: > 0 } code || Single(form, Parameters.CodeVerifier) is not { Length: > 0 } verifier
            || Single(form, Parameters.RedirectUri) is not { Length: > 0 } redirectUri || code.Length > 512)
        {
            return null;
        }
        var (db, queries) = Database(context);
        var stored = await queries.FindGrantAsync(db, TokenFormats.StoredReferenceId(code));
        if (!IsRedeemable(stored, TokenTypeIdentifiers.Private.AuthorizationCode, client, now))
        {
            return null;
        }
        var principal = await ReadCodeAsync(context, code);
        if (principal is null || principal.GetClaim(Claims.Subject) is not { } subject
            || !principal.GetPresenters().Contains(client.ClientId)
            || principal.GetClaim(Handlers.DPoPTransaction.CodeKeyClaim) is not null
            || principal.GetClaim(Claims.Private.RedirectUri) != redirectUri
            || principal.GetClaim(Claims.Private.CodeChallengeMethod) != CodeChallengeMethods.Sha256
            || principal.GetClaim(Claims.Private.CodeChallenge) is not { } challenge
            || !MatchesChallenge(verifier, challenge))
        {
            return null;
        }
        var scopes = principal.GetScopes().ToArray();
        if (scopes.Contains(OidcScopes.OpenId))
        {
            return null;
        }
        var offlineImplied = principal.GetClaim(OAuthPrincipals.OfflineAccessImpliedClaim) is not null;
        return IssueForUser(client, stored, subject, scopes, [.. principal.GetResources()], offlineImplied, now);
    }

    private static (LatchkeyDbContext Db, CompiledQueries Queries) Database(HttpContext context)
    {
        var db = context.RequestServices.GetRequiredService<LatchkeyDbContext>();
        return (db, QueriesByModel.GetValue(db.Model, _ => new CompiledQueries()));
    }

    /// <summary>A refresh token or code of this type, still valid, this client's, unexpired, and of a valid authorization (if any).</summary>
    private static bool IsRedeemable([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] StoredGrant? stored, string type, DirectGrantClient client, DateTimeOffset now) =>
        stored is not null && stored.Type == type && stored.Status == Statuses.Valid && stored.ApplicationId == client.Id
        && stored.ExpirationDate is { } expires && DateTime.SpecifyKind(expires, DateTimeKind.Utc) > now.UtcDateTime
        && (stored.AuthorizationId is null || stored.AuthorizationStatus == Statuses.Valid);

    /// <summary>
    /// The code's principal as OpenIddict reads it (looked up, decrypted and checked: OpenIddict
    /// refuses a reference token's payload presented as the token), or null when it would not accept it.
    /// </summary>
    private static async Task<System.Security.Claims.ClaimsPrincipal?> ReadCodeAsync(HttpContext context, string code)
    {
        var services = context.RequestServices;
        var transaction = await services.GetRequiredService<IOpenIddictServerFactory>().CreateTransactionAsync();
        var request = context.Request;
        // The issuer OpenIddict expects when none is configured: this request's base address, as its ASP.NET Core host sets it.
        transaction.BaseUri = new Uri($"{request.Scheme}://{request.Host}{request.PathBase}/", UriKind.Absolute);
        var validation = new OpenIddictServerEvents.ValidateTokenContext(transaction)
        {
            Token = code,
            ValidTokenTypes = { TokenTypeIdentifiers.Private.AuthorizationCode },
        };
        await services.GetRequiredService<IOpenIddictServerDispatcher>().DispatchAsync(validation);
        return validation.IsRejected ? null : validation.Principal;
    }

    /// <summary>RFC 7636 §4.6, S256: BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge, compared in constant time.</summary>
    private static bool MatchesChallenge(string verifier, string challenge)
    {
        if (verifier.Length is < 43 or > 128 || !verifier.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~'))
        {
            return false;
        }
        return CryptographicOperations.FixedTimeEquals(System.Text.Encoding.ASCII.GetBytes(Pkce.S256Challenge(verifier)), System.Text.Encoding.ASCII.GetBytes(challenge));
    }

    /// <summary>A user's access token and (with offline_access) refresh token, for a redeemed refresh token or code.</summary>
    private IssuedTokens? IssueForUser(DirectGrantClient client, StoredGrant stored, string subject, string[] scopes, string[] resources,
        bool offlineImplied, DateTimeOffset now)
    {
        // The token's own subject, and the account must still exist and not be locked (as TokenEndpoint checks for OpenIddict's path).
        if (stored.Subject != subject || !stored.UserExists
            || (stored.UserLockoutEnabled && stored.UserLockoutEnd is { } lockedUntil && lockedUntil > now))
        {
            return null;
        }

        var accessScopes = scopes.Where(s => s != OidcScopes.OfflineAccess).ToArray();
        var access = NewToken(client, TokenTypeIdentifiers.AccessToken, subject, stored.AuthorizationId, now, AccessTokenLifetime,
            StoredTokenClaims.Serialize(accessScopes, resources, [client.ClientId], [], null, []));
        // Refresh tokens only with offline_access (OpenIddict's rule; every user grant of Latchkey's has it).
        var refresh = scopes.Contains(OidcScopes.OfflineAccess)
            ? NewToken(client, TokenTypeIdentifiers.RefreshToken, subject, stored.AuthorizationId, now, RefreshTokenLifetime,
                StoredTokenClaims.Serialize(scopes, [], [client.ClientId], resources, null,
                    offlineImplied ? [StoredTokenClaims.KeptClaim.Text(OAuthPrincipals.OfflineAccessImpliedClaim, "true")] : []))
            : null;
        var reported = scopes.Where(s => s != OidcScopes.OfflineAccess || !offlineImplied).ToArray();
        return new IssuedTokens(subject, access, refresh, reported, stored.Id);
    }

    private TimeSpan AccessTokenLifetime => TimeSpan.FromMinutes(options.Value.AccessTokenLifetimeMinutes);

    private TimeSpan RefreshTokenLifetime => TimeSpan.FromDays(options.Value.RefreshTokenLifetimeDays);

    private static NewTokenRow NewToken(DirectGrantClient client, string type, string subject, string? authorizationId, DateTimeOffset now,
        TimeSpan lifetime, string properties)
    {
        var value = TokenFormats.New(type == TokenTypeIdentifiers.AccessToken ? TokenFormats.AccessToken : TokenFormats.RefreshToken, now);
        var row = new OAuthToken
        {
            Type = type,
            Status = Statuses.Valid,
            Subject = subject,
            CreationDate = now.UtcDateTime,
            ExpirationDate = (now + lifetime).UtcDateTime,
            ReferenceId = TokenFormats.StoredReferenceId(value),
            Properties = properties,
        };
        return new NewTokenRow(row, value, client.Id, authorizationId, now + lifetime);
    }

    private void RecordIssued(DirectGrantClient client, string grantType, IssuedTokens issued)
    {
        metrics.TokenIssued(grantType, client.ClientId);
        // The account a token acts for: its user, or for an app acting as itself, the app's owner (TokenAccounts).
        var account = issued.Subject == client.ClientId ? client.OwnerId : issued.Subject;
        if (account is null)
        {
            return;
        }
        var detail = "grant_type=" + grantType;
        if (issued.Refresh is { } refresh)
        {
            detail += " refresh_token_id=" + refresh.Row.Id;
        }
        securityEvents.Record(account, SecurityEventTypes.TokenIssued, issued.Access.Row.Id, client.ClientId, detail);
    }

    /// <summary>The answer OpenIddict and Latchkey's response handlers give (RFC 6749 §5.1 plus the reference fields), not cached.</summary>
    private static async Task WriteAnswerAsync(HttpResponse response, IssuedTokens issued, DateTimeOffset now)
    {
        response.StatusCode = StatusCodes.Status200OK;
        response.Headers.CacheControl = "no-store";
        response.Headers.Pragma = "no-cache";
        response.Headers.Expires = "Thu, 01 Jan 1970 00:00:00 GMT";
        response.ContentType = "application/json;charset=UTF-8";
        using var buffer = new MemoryStream(512);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            writer.WriteString(Parameters.AccessToken, issued.Access.Value);
            writer.WriteString(Parameters.TokenType, TokenTypes.Bearer);
            writer.WriteNumber(Parameters.ExpiresIn, (long)((issued.Access.ExpiresAt - now).TotalSeconds + .5));
            if (issued.ReportedScopes.Length > 0)
            {
                writer.WriteString(Parameters.Scope, string.Join(' ', issued.ReportedScopes));
            }
            if (issued.Refresh is { } refresh)
            {
                writer.WriteString(Parameters.RefreshToken, refresh.Value);
            }
            writer.WriteString("access_token_expires_at", UtcTimestampConverter.Text(issued.Access.ExpiresAt));
            if (issued.Refresh is { } refreshed)
            {
                writer.WriteString("refresh_token_expires_at", UtcTimestampConverter.Text(refreshed.ExpiresAt));
            }
            writer.WriteStartArray("scopes");
            foreach (var scope in issued.ReportedScopes)
            {
                writer.WriteStringValue(scope);
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        response.ContentLength = buffer.Length;
        await response.Body.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length));
    }

    private sealed record StoredGrant(string Id, string? Type, string? Status, string? Subject, DateTime? ExpirationDate, string? Properties,
        bool HasPayload, string? ApplicationId, string? AuthorizationId, string? AuthorizationStatus,
        bool UserExists, bool UserLockoutEnabled, DateTimeOffset? UserLockoutEnd);

    private sealed record NewTokenRow(OAuthToken Row, string Value, string ApplicationId, string? AuthorizationId, DateTimeOffset ExpiresAt);

    private sealed record IssuedTokens(string Subject, NewTokenRow Access, NewTokenRow? Refresh, string[] ReportedScopes, string? RedeemedTokenId)
    {
        public IReadOnlyList<TokenRow> Rows => Refresh is null
            ? [new TokenRow(Access.Row, Access.ApplicationId, Access.AuthorizationId)]
            : [new TokenRow(Access.Row, Access.ApplicationId, Access.AuthorizationId), new TokenRow(Refresh.Row, Refresh.ApplicationId, Refresh.AuthorizationId)];
    }
}

/// <summary>What the direct grants need of an app, read once per cached snapshot of it.</summary>
internal sealed class DirectGrantClient
{
    public required string Id { get; init; }
    public required string ClientId { get; init; }
    public string? OwnerId { get; init; }
    public bool Enabled { get; init; }
    public bool IsConfidential { get; init; }
    /// <summary>Base64 of the SHA-256 of the client secret, as stored.</summary>
    public string? SecretHash { get; init; }
    public bool HasOwnTokenSettings { get; init; }
    public required FrozenSet<string> Permissions { get; init; }
    public required string[] DefaultClientScopes { get; init; }

    public static DirectGrantClient Of(OAuthApplicationSnapshot snapshot)
    {
        var app = snapshot.Copy();
        var permissions = string.IsNullOrEmpty(app.Permissions) ? [] : JsonSerializer.Deserialize<string[]>(app.Permissions) ?? [];
        return new DirectGrantClient
        {
            Id = app.Id!,
            ClientId = app.ClientId!,
            OwnerId = app.OwnerId,
            Enabled = app.Enabled,
            IsConfidential = app.ClientType == ClientTypes.Confidential,
            SecretHash = app.ClientSecret,
            // Per-app token lifetimes (OpenIddict's settings) are OpenIddict's to apply.
            HasOwnTokenSettings = !string.IsNullOrEmpty(app.Settings) && app.Settings != "{}",
            Permissions = permissions.ToFrozenSet(StringComparer.Ordinal),
            DefaultClientScopes = [.. OAuthAppService.ScopesOf(app.Permissions).Where(scope => !AuthorizationServerSetup.OpenIdScopes.Contains(scope))],
        };
    }
}

/// <summary>A token row and the keys EF Core keeps as shadow properties (OpenIddict's entities have navigations only).</summary>
internal sealed record TokenRow(OAuthToken Token, string ApplicationId, string? AuthorizationId);

public static class DirectTokenGrantsSetup
{
    /// <summary>Before authentication, so that OpenIddict only sees what the direct grants leave to it.</summary>
    public static WebApplication UseDirectTokenGrants(this WebApplication app)
    {
        // JWT access tokens are signed by OpenIddict's serializer: with that format every token request is OpenIddict's.
        var settings = app.Services.GetRequiredService<IOptions<AuthorizationServerOptions>>().Value;
        if (!settings.DirectGrants || settings.UsesJwtAccessTokens)
        {
            return app;
        }
        app.Use(async (context, next) =>
        {
            if (context.Request.Path.Equals(AuthorizationServerSetup.TokenPath, StringComparison.OrdinalIgnoreCase)
                && HttpMethods.IsPost(context.Request.Method)
                && await context.RequestServices.GetRequiredService<DirectTokenGrants>().TryHandleAsync(context))
            {
                return;
            }
            await next(context);
        });
        return app;
    }
}

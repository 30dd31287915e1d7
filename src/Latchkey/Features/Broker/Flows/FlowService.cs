using System.Security.Cryptography;
using Latchkey.Common;
using Latchkey.Features.AgentApi;
using Latchkey.Features.Broker.Credentials;
using Latchkey.Features.Broker.Providers;
using Latchkey.Features.Broker.Vault;
using Latchkey.Storage;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Broker.Flows;

public sealed record InitResponse(string AuthUrl, string State, int ExpiresIn);
public sealed record CallbackResponse(string Status, string Message);
public sealed record ExchangeResponse(string CredentialId, string Status, string ProviderId, IReadOnlyList<string> Scopes, DateTimeOffset? ExpiresAt);
public sealed record StatusResponse(string Status, string? CredentialId, string? ProviderId, IReadOnlyList<string>? Scopes, DateTimeOffset? ExpiresAt);
public sealed record RefreshResponse(string CredentialId, string Status, DateTimeOffset? ExpiresAt);
public sealed record CancelResponse(string Status, string Message);

internal static class FlowScopes
{
    /// <summary>Providers answer scopes space- or comma-separated; credentials keep them space-separated.</summary>
    public static string Normalize(string scopes) =>
        string.Join(' ', scopes.Split([' ', ','], StringSplitOptions.RemoveEmptyEntries).Distinct(StringComparer.Ordinal));
}

/// <summary>
/// The OAuth flows Latchkey runs against providers for an account (the broker wire contract):
/// init, callback, exchange-token, status, cancel.
/// </summary>
public sealed partial class FlowService(
    LatchkeyDbContext db,
    ProviderService providers,
    ProviderClient client,
    SecretVault vault,
    CredentialAudit audit,
    IOptions<BrokerOptions> options,
    TimeProvider time,
    ILogger<FlowService> logger)
{
    private const int StateLength = 43;

    public async Task<Outcome<InitResponse>> InitAsync(string accountId, string? providerId, string? redirectUri, string[]? scopes, CancellationToken cancellationToken,
        string? endUserId = null, string[]? tags = null, string? connectSessionId = null)
    {
        if (CredentialTags.Check(tags) is { } badTags)
        {
            return AgentError.BadRequest(badTags);
        }
        if (endUserId is { Length: 0 or > 200 })
        {
            return AgentError.BadRequest("end_user_id must have 1 to 200 characters.");
        }
        if (string.IsNullOrWhiteSpace(providerId))
        {
            return AgentError.BadRequest("provider_id is required (GET /mcp/providers lists them).");
        }
        if (string.IsNullOrWhiteSpace(redirectUri) || redirectUri.Length > 2000 || !Uri.TryCreate(redirectUri, UriKind.Absolute, out var redirect) ||
            redirect.Scheme is not ("https" or "http") || !string.IsNullOrEmpty(redirect.Fragment))
        {
            return AgentError.BadRequest("redirect_uri must be an absolute http(s) URL without a fragment.");
        }
        if (scopes is not null && (scopes.Length > 100 || scopes.Any(s => string.IsNullOrWhiteSpace(s) || s.Length > 300 || s.Any(char.IsWhiteSpace))))
        {
            return AgentError.BadRequest("scopes must be an array of non-empty scope names without spaces.");
        }
        var provider = await providers.FindVisibleAsync(accountId, providerId, cancellationToken);
        if (provider is null)
        {
            return AgentError.NotFound("provider", $"There is no provider {InputEcho.Quote(providerId)}.");
        }

        var definition = provider.Definition;
        if (definition.AuthType != AuthTypes.OAuth2)
        {
            return AgentError.BadRequest($"{provider.Name} ({provider.Id}) takes {definition.AuthType} credentials, not an OAuth flow: store one with POST /mcp/credentials.");
        }
        var requested = scopes is { Length: > 0 } ? scopes : definition.DefaultScopes;
        var state = RandomNumberGenerator.GetString(OpaqueSecretFormat.Alphabet, StateLength);
        var verifier = definition.Pkce ? RandomNumberGenerator.GetString(OpaqueSecretFormat.Alphabet, 64) : null;
        var now = time.GetUtcNow();
        var flowId = Guid.CreateVersion7().ToString("N");
        var flow = new OAuthFlowState
        {
            Id = flowId,
            StateHash = SecretHash.Compute(state),
            AccountId = accountId,
            ProviderInstanceId = provider.Id,
            RedirectUri = redirectUri,
            Scopes = string.Join(' ', requested),
            CodeVerifierCiphertext = verifier is null ? null : await vault.EncryptAsync(verifier, VerifierContext(flowId), cancellationToken),
            CreatedAt = now,
            ExpiresAt = now.AddSeconds(options.Value.StateLifetimeSeconds),
            EndUserId = endUserId,
            Tags = CredentialTags.Encode(tags),
            ConnectSessionId = connectSessionId,
        };
        db.BrokerFlows.Add(flow);
        await db.SaveChangesAsync(cancellationToken);

        var parameters = new Dictionary<string, string?>
        {
            ["client_id"] = provider.ClientId,
            ["redirect_uri"] = redirectUri,
            ["response_type"] = "code",
            ["state"] = state,
        };
        if (requested.Length > 0)
        {
            parameters[definition.ScopeParameter] = string.Join(definition.ScopeSeparator, requested);
        }
        if (verifier is not null)
        {
            parameters["code_challenge"] = Common.Pkce.S256Challenge(verifier);
            parameters["code_challenge_method"] = "S256";
        }
        foreach (var (name, value) in definition.ExtraAuthorizeParams)
        {
            parameters[name] = value;
        }
        return new InitResponse(QueryHelpers.AddQueryString(definition.AuthorizeUrl, parameters), state, options.Value.StateLifetimeSeconds);
    }

    public async Task<Outcome<CallbackResponse>> CallbackAsync(string accountId, string? code, string? state, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(code) || code.Length > 4096)
        {
            return AgentError.BadRequest("code is required: the value the provider added to the redirect.");
        }
        var (flow, error) = await FindUsableAsync(accountId, state, cancellationToken);
        if (flow is null)
        {
            return error!;
        }
        if (flow.Status != FlowStatus.Pending)
        {
            return OutOfOrder(flow, "callback");
        }
        var ciphertext = await vault.EncryptAsync(code, CodeContext(flow.Id), cancellationToken);
        // Conditional on the status, so two concurrent callbacks cannot both succeed.
        var updated = await db.BrokerFlows.Where(f => f.Id == flow.Id && f.Status == FlowStatus.Pending)
            .ExecuteUpdateAsync(s => s.SetProperty(f => f.Status, FlowStatus.CodeReceived).SetProperty(f => f.CodeCiphertext, ciphertext), cancellationToken);
        return updated == 1
            ? new CallbackResponse(FlowStatus.CodeReceived, "The code was received. Call /mcp/oauth/exchange-token with the same state to store the credential.")
            : AgentError.Conflict("state_already_used", "This state has already been used.");
    }

    public async Task<Outcome<ExchangeResponse>> ExchangeAsync(string accountId, string? state, CancellationToken cancellationToken)
    {
        var (flow, error) = await FindUsableAsync(accountId, state, cancellationToken);
        if (flow is null)
        {
            return error!;
        }
        if (flow.Status != FlowStatus.CodeReceived || flow.CodeCiphertext is null)
        {
            return OutOfOrder(flow, "exchange-token");
        }
        // Claim the code: only one exchange may take it.
        var claimed = await db.BrokerFlows.Where(f => f.Id == flow.Id && f.CodeCiphertext == flow.CodeCiphertext)
            .ExecuteUpdateAsync(s => s.SetProperty(f => f.CodeCiphertext, (string?)null), cancellationToken);
        if (claimed != 1)
        {
            return AgentError.Conflict("state_already_used", "This state's code is already being exchanged.");
        }

        var provider = await db.BrokerProviders.AsNoTracking().FirstAsync(p => p.Id == flow.ProviderInstanceId, cancellationToken);
        var definition = provider.Definition;
        var code = await vault.DecryptAsync(flow.CodeCiphertext, CodeContext(flow.Id), cancellationToken);
        var verifier = flow.CodeVerifierCiphertext is null ? null : await vault.DecryptAsync(flow.CodeVerifierCiphertext, VerifierContext(flow.Id), cancellationToken);
        var secret = await providers.ClientSecretAsync(provider, cancellationToken);

        ProviderTokens tokens;
        try
        {
            tokens = await client.ExchangeCodeAsync(definition, provider.ClientId, secret, code, flow.RedirectUri, verifier, cancellationToken);
        }
        catch (ProviderCallException exception)
        {
            LogExchangeFailed(logger, provider.Id, exception.Kind);
            if (exception.Kind == ProviderFailureKind.InvalidGrant)
            {
                // The caller's code was refused (wrong, expired or used): its request, not the
                // provider, failed, and like any refused request it changes nothing (the claimed code is put back).
                await db.BrokerFlows.Where(f => f.Id == flow.Id && f.CodeCiphertext == null)
                    .ExecuteUpdateAsync(s => s.SetProperty(f => f.CodeCiphertext, flow.CodeCiphertext), CancellationToken.None);
                return new AgentError(StatusCodes.Status400BadRequest, "invalid_grant", $"The provider refused the code: {exception.Message} Start again with /mcp/oauth/init.");
            }
            await SetStatusAsync(flow.Id, FlowStatus.Failed, exception.Message, null, cancellationToken);
            return AgentError.Provider(exception.Message);
        }

        var userInfo = definition.UserinfoUrl is null ? tokens.Raw : await client.UserInfoAsync(definition, tokens.AccessToken, cancellationToken);
        var now = time.GetUtcNow();
        var credentialId = await CredentialIds.NextAsync(db, provider.CatalogKey, cancellationToken);
        var credential = new Credential
        {
            Id = credentialId,
            AccountId = accountId,
            ProviderInstanceId = provider.Id,
            ProviderKey = provider.CatalogKey,
            Scopes = FlowScopes.Normalize(string.IsNullOrWhiteSpace(tokens.Scope) ? flow.Scopes : tokens.Scope),
            ExternalAccountId = ProviderClient.ReadPath(userInfo, definition.AccountId) ?? ProviderClient.ReadPath(tokens.Raw, definition.AccountId),
            ExternalAccountLabel = ProviderClient.ReadPath(userInfo, definition.AccountLabel) ?? ProviderClient.ReadPath(tokens.Raw, definition.AccountLabel),
            AccessTokenCiphertext = await vault.EncryptAsync(tokens.AccessToken, CredentialService.AccessContext(credentialId), cancellationToken),
            RefreshTokenCiphertext = tokens.RefreshToken is null ? null : await vault.EncryptAsync(tokens.RefreshToken, CredentialService.RefreshContext(credentialId), cancellationToken),
            ExpiresAt = tokens.ExpiresIn is { } seconds ? now.AddSeconds(seconds) : null,
            CreatedAt = now,
            EndUserId = flow.EndUserId,
            Tags = flow.Tags,
        };
        db.BrokerCredentials.Add(credential);
        await db.SaveChangesAsync(cancellationToken);
        await SetStatusAsync(flow.Id, FlowStatus.Active, null, credential.Id, cancellationToken);
        await audit.RecordChangeAsync(credential, "created");
        return new ExchangeResponse(credential.Id, CredentialStatus.Active, provider.Id, CredentialService.View(credential).Scopes, credential.ExpiresAt);
    }

    /// <summary>
    /// The provider's redirect, for Latchkey's own pages that receive it themselves: a refusal
    /// (<paramref name="providerError"/>) cancels the flow; otherwise callback and exchange in one
    /// go. The problem comes back in words for the person in the browser. Only a flow started by
    /// <paramref name="connectSessionId"/> (null: by no connect session) is completed, so that a
    /// code and state from one browser cannot finish another person's connection.
    /// </summary>
    public async Task<(ExchangeResponse? Response, string? Problem)> CompleteRedirectAsync(
        string accountId, string? code, string? state, string? providerError, CancellationToken cancellationToken, string? connectSessionId = null)
    {
        if (string.IsNullOrWhiteSpace(state) || state.Length > 200
            || await FindAsync(accountId, state, cancellationToken) is not { } flow || flow.ConnectSessionId != connectSessionId)
        {
            return (null, "This connection was not started here. Start again.");
        }
        if (!string.IsNullOrEmpty(providerError))
        {
            await CancelAsync(accountId, state, cancellationToken);
            return (null, providerError == "access_denied"
                ? "You did not allow the connection; nothing changed."
                : $"The service refused the connection ({InputEcho.Quote(providerError)}); nothing changed.");
        }
        var (_, error) = await CallbackAsync(accountId, code, state, cancellationToken);
        var (exchanged, exchangeError) = error is null ? await ExchangeAsync(accountId, state, cancellationToken) : error;
        return exchanged is not null ? (exchanged, null) : (null, $"The connection could not be completed: {exchangeError!.Message} Try again.");
    }

    public async Task<Outcome<StatusResponse>> StatusAsync(string accountId, string? state, string? credentialId, CancellationToken cancellationToken)
    {
        if (!string.IsNullOrWhiteSpace(credentialId))
        {
            var credential = await db.BrokerCredentials.AsNoTracking().FirstOrDefaultAsync(c => c.Id == credentialId && c.AccountId == accountId, cancellationToken);
            return credential is null
                ? AgentError.NotFound("credential", $"You have no credential {InputEcho.Quote(credentialId)}.")
                : Describe(CredentialStatusOf(credential), credential);
        }
        if (string.IsNullOrWhiteSpace(state))
        {
            return AgentError.BadRequest("Send state or credential_id.");
        }
        var flow = await FindAsync(accountId, state, cancellationToken);
        if (flow is null)
        {
            return AgentError.NotFound("state", "There is no flow with this state.");
        }
        var status = flow.Status is FlowStatus.Pending or FlowStatus.CodeReceived && flow.ExpiresAt <= time.GetUtcNow() ? FlowStatus.Expired : flow.Status;
        if (flow.CredentialId is { } id && await db.BrokerCredentials.AsNoTracking().FirstOrDefaultAsync(c => c.Id == id, cancellationToken) is { } created)
        {
            return Describe(CredentialStatusOf(created), created);
        }
        return new StatusResponse(status, null, flow.ProviderInstanceId, null, null);
    }

    public async Task<Outcome<CancelResponse>> CancelAsync(string accountId, string? state, CancellationToken cancellationToken)
    {
        var (flow, error) = await FindUsableAsync(accountId, state, cancellationToken);
        if (flow is null)
        {
            return error!;
        }
        var canceled = await db.BrokerFlows.Where(f => f.Id == flow.Id && (f.Status == FlowStatus.Pending || f.Status == FlowStatus.CodeReceived))
            .ExecuteUpdateAsync(s => s.SetProperty(f => f.Status, FlowStatus.Canceled).SetProperty(f => f.CodeCiphertext, (string?)null), cancellationToken);
        return canceled == 1
            ? new CancelResponse(FlowStatus.Canceled, "The flow was canceled; its state can no longer be used.")
            : OutOfOrder(flow, "cancel");
    }

    /// <summary>Removes flows that ended or expired more than a day ago.</summary>
    public Task<int> PruneAsync(CancellationToken cancellationToken)
    {
        var threshold = time.GetUtcNow().AddDays(-1);
        return db.BrokerFlows.Where(f => f.ExpiresAt < threshold).ExecuteDeleteAsync(cancellationToken);
    }

    private async Task<Outcome<OAuthFlowState>> FindUsableAsync(string accountId, string? state, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(state) || state.Length > 200)
        {
            return AgentError.BadRequest("state is required: the value /mcp/oauth/init returned.");
        }
        var flow = await FindAsync(accountId, state, cancellationToken);
        if (flow is null)
        {
            return AgentError.NotFound("state", "There is no flow with this state.");
        }
        if (flow.Status is FlowStatus.Pending or FlowStatus.CodeReceived && flow.ExpiresAt <= time.GetUtcNow())
        {
            await SetStatusAsync(flow.Id, FlowStatus.Expired, "The state expired.", null, cancellationToken);
            return AgentError.Gone($"The state expired after {options.Value.StateLifetimeSeconds} seconds; start again with /mcp/oauth/init.");
        }
        if (flow.Status == FlowStatus.Expired)
        {
            return AgentError.Gone("The state expired; start again with /mcp/oauth/init.");
        }
        return flow;
    }

    // Another account's state is "not found": its existence is not revealed.
    private Task<OAuthFlowState?> FindAsync(string accountId, string state, CancellationToken cancellationToken)
    {
        var hash = SecretHash.Compute(state);
        return db.BrokerFlows.AsNoTracking().FirstOrDefaultAsync(f => f.StateHash == hash && f.AccountId == accountId, cancellationToken);
    }

    private static AgentError OutOfOrder(OAuthFlowState flow, string call) => flow.Status switch
    {
        FlowStatus.Canceled => AgentError.Conflict("flow_canceled", $"The flow was canceled; {call} is no longer possible."),
        FlowStatus.Pending => AgentError.Conflict("callback_required", "No code has been received yet: call /mcp/oauth/callback with the code first."),
        FlowStatus.Failed => AgentError.Conflict("flow_failed", $"The flow failed ({flow.Error}); start again with /mcp/oauth/init."),
        _ => AgentError.Conflict("state_already_used", "This state has already been used."),
    };

    private Task<int> SetStatusAsync(string flowId, string status, string? error, string? credentialId, CancellationToken cancellationToken) =>
        db.BrokerFlows.Where(f => f.Id == flowId).ExecuteUpdateAsync(s => s
            .SetProperty(f => f.Status, status)
            .SetProperty(f => f.Error, error == null ? null : error.Length > 1000 ? error.Substring(0, 1000) : error)
            .SetProperty(f => f.CredentialId, credentialId), cancellationToken);

    private string CredentialStatusOf(Credential credential) =>
        credential.Status == CredentialStatus.Active && credential.RefreshTokenCiphertext is null && credential.ExpiresAt <= time.GetUtcNow()
            ? FlowStatus.Expired
            : credential.Status;

    private static StatusResponse Describe(string status, Credential credential) =>
        new(status, credential.Id, credential.ProviderInstanceId, CredentialService.View(credential).Scopes, credential.ExpiresAt);

    private static string VerifierContext(string flowId) => $"flow:{flowId}:code_verifier";

    private static string CodeContext(string flowId) => $"flow:{flowId}:code";

    [LoggerMessage(Level = LogLevel.Warning, Message = "Code exchange with provider {ProviderId} failed: {Kind}")]
    private static partial void LogExchangeFailed(ILogger logger, string providerId, ProviderFailureKind kind);
}

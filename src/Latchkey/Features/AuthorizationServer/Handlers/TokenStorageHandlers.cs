using System.Text.Json;
using Latchkey.Features.AuthorizationServer.Tokens;
using Latchkey.Features.AuthorizationServer.Stores;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

using TokenFormats = Latchkey.Features.AuthorizationServer.Tokens.TokenFormats;

namespace Latchkey.Features.AuthorizationServer.Handlers;

// Tokens stored once, by reference, in Latchkey's format.

/// <summary>
/// Takes the place of OpenIddict's <c>CreateTokenEntry</c>. For access and refresh tokens stored
/// by reference, the entry is only described here (with a time-ordered id the token's payload
/// names) and inserted once, complete, by <see cref="AttachPrefixedReferenceIdentifier"/>: one
/// write per token instead of an insert followed by an update. Other tokens (codes) are created
/// at once, as OpenIddict does.
/// </summary>
internal sealed class CreateTokenEntryOnce(IOpenIddictApplicationManager applications, IOpenIddictTokenManager tokens) : IOpenIddictServerHandler<GenerateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Scoped<GenerateTokenContext, CreateTokenEntryOnce>(
        OpenIddictServerHandlers.Protection.CreateTokenEntry.Descriptor.Order, filters => filters.AddFilter<OpenIddictServerHandlerFilters.RequireDegradedModeDisabled>().AddFilter<OpenIddictServerHandlerFilters.RequireTokenStorageEnabled>().AddFilter<OpenIddictServerHandlerFilters.RequireTokenEntryCreated>());

    public async ValueTask HandleAsync(GenerateTokenContext context)
    {
        var descriptor = new OpenIddictTokenDescriptor
        {
            AuthorizationId = context.Principal.GetAuthorizationId(),
            CreationDate = context.Principal.GetCreationDate(),
            ExpirationDate = context.Principal.GetExpirationDate(),
            Principal = context.Principal,
            Type = context.TokenType,
            Status = context.TokenType == TokenTypeIdentifiers.Private.DeviceCode ? Statuses.Inactive : Statuses.Valid,
            Subject = context.TokenType is TokenTypeIdentifiers.Private.DeviceCode or TokenTypeIdentifiers.Private.UserCode
                ? null
                : context.Principal.GetClaim(Claims.Subject),
        };
        if (!string.IsNullOrEmpty(context.ClientId))
        {
            var application = await applications.FindByClientIdAsync(context.ClientId, context.CancellationToken)
                ?? throw new InvalidOperationException("The client application of the token does not exist.");
            descriptor.ApplicationId = await applications.GetIdAsync(application, context.CancellationToken);
        }

        if (context.IsReferenceToken && TokenFormats.ForType(context.TokenType) is not null)
        {
            var id = Guid.CreateVersion7().ToString();
            context.Principal.SetTokenId(id);
            PendingTokenEntry.Set(context.Transaction, context.TokenType, new PendingTokenEntry(id, descriptor));
            return;
        }

        var entry = await tokens.CreateAsync(descriptor, context.CancellationToken)
            ?? throw new InvalidOperationException("The token entry could not be created.");
        context.Principal.SetTokenId(await tokens.GetIdAsync(entry, context.CancellationToken));
    }
}

/// <summary>A token entry described but not yet stored; see <see cref="CreateTokenEntryOnce"/>.</summary>
internal sealed record PendingTokenEntry(string Id, OpenIddictTokenDescriptor Descriptor)
{
    private static string Key(string? tokenType) => "latchkey.pending_token_entry:" + tokenType;

    public static void Set(OpenIddictServerTransaction transaction, string? tokenType, PendingTokenEntry entry) =>
        transaction.SetProperty(Key(tokenType), entry);

    /// <summary>The entry described for this token type, removed from the transaction (it is inserted once).</summary>
    public static PendingTokenEntry? Take(OpenIddictServerTransaction transaction, string? tokenType)
    {
        var entry = transaction.GetProperty<PendingTokenEntry>(Key(tokenType));
        if (entry is not null)
        {
            transaction.SetProperty<PendingTokenEntry>(Key(tokenType), null);
        }
        return entry;
    }
}

/// <summary>
/// Replaces OpenIddict's random reference identifiers for access and refresh tokens with
/// Latchkey's prefixed, checksummed format. Runs just before OpenIddict's own
/// <c>AttachTokenPayload</c> and does its work, so that step is skipped for these tokens: the
/// entry described by <see cref="CreateTokenEntryOnce"/> is inserted here, complete. The token
/// manager stores only the SHA-256 hash of the identifier.
/// </summary>
internal sealed class AttachPrefixedReferenceIdentifier(IOpenIddictTokenManager tokens, TimeProvider time) : IOpenIddictServerHandler<GenerateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Scoped<GenerateTokenContext, AttachPrefixedReferenceIdentifier>(
        HandlerDescriptors.Before(OpenIddictServerHandlers.Protection.AttachTokenPayload.Descriptor), filters => filters.AddFilter<OpenIddictServerHandlerFilters.RequireDegradedModeDisabled>().AddFilter<OpenIddictServerHandlerFilters.RequireTokenStorageEnabled>().AddFilter<OpenIddictServerHandlerFilters.RequireTokenPayloadPersisted>());

    public async ValueTask HandleAsync(GenerateTokenContext context)
    {
        var format = TokenFormats.ForType(context.TokenType);
        if (format is null || !context.IsReferenceToken || PendingTokenEntry.Take(context.Transaction, context.TokenType) is not { } pending)
        {
            return;
        }

        var descriptor = pending.Descriptor;
        // No payload: the row says what the token means (StoredTokenClaims), and only Latchkey reads it back.
        descriptor.Payload = null;
        descriptor.Principal = context.Principal;
        descriptor.ReferenceId = TokenFormats.New(format, time.GetUtcNow());
        var entry = new OAuthToken { Id = pending.Id };
        await tokens.PopulateAsync(entry, descriptor, context.CancellationToken);
        entry.Properties = StoredTokenClaims.Serialize(context.Principal);
        await tokens.CreateAsync(entry, context.CancellationToken);

        context.Token = descriptor.ReferenceId;
        context.PersistTokenPayload = false;
    }
}

/// <summary>
/// Reads a token in Latchkey's format from its row (<see cref="StoredTokenClaims"/>) where
/// OpenIddict would decrypt the payload. Runs just before OpenIddict's
/// <c>ValidateReferenceTokenIdentifier</c>, which then runs only for what this did not resolve:
/// JWTs, codes, rows of the older format with a payload, and a token of an unexpected type (which
/// it refuses with its own message).
/// </summary>
internal sealed class RestoreStoredTokenPrincipal(IOpenIddictTokenManager tokens) : IOpenIddictServerHandler<ValidateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Scoped<ValidateTokenContext, RestoreStoredTokenPrincipal>(
        HandlerDescriptors.Before(OpenIddictServerHandlers.Protection.ValidateReferenceTokenIdentifier.Descriptor, 250),
        filters => filters.AddFilter<OpenIddictServerHandlerFilters.RequireDegradedModeDisabled>().AddFilter<OpenIddictServerHandlerFilters.RequireTokenStorageEnabled>());

    /// <summary>OpenIddict's own look-up, kept for what <see cref="RestoreStoredTokenPrincipal"/> leaves unresolved.</summary>
    public static OpenIddictServerHandlerDescriptor BuiltInLookup { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
        .Import(OpenIddictServerHandlers.Protection.ValidateReferenceTokenIdentifier.Descriptor)
        .AddFilter<RequireNoPrincipalYet>()
        .Build();

    public async ValueTask HandleAsync(ValidateTokenContext context)
    {
        if (context.Principal is not null || string.IsNullOrEmpty(context.Token) || !TokenFormats.HasLatchkeyPrefix(context.Token)
            || await tokens.FindByReferenceIdAsync(context.Token, context.CancellationToken) is not OAuthToken entry
            || !string.IsNullOrEmpty(entry.Payload) || entry.Type is null
            || (context.ValidTokenTypes.Count > 0 && !context.ValidTokenTypes.Contains(entry.Type)))
        {
            return;
        }
        using var properties = JsonDocument.Parse(string.IsNullOrEmpty(entry.Properties) ? "{}" : entry.Properties);
        if (!StoredTokenClaims.IsComplete(properties.RootElement))
        {
            return;
        }
        context.IsReferenceToken = true;
        context.TokenId = entry.Id;
        context.Principal = StoredTokenClaims.Restore(entry, properties.RootElement);
    }

    /// <summary>Lets OpenIddict's look-up run only when no principal was restored from the row.</summary>
    internal sealed class RequireNoPrincipalYet : IOpenIddictServerHandlerFilter<ValidateTokenContext>
    {
        public ValueTask<bool> IsActiveAsync(ValidateTokenContext context) => ValueTask.FromResult(context.Principal is null);
    }
}

/// <summary>Refuses a token with Latchkey's prefix but a bad length or checksum before any database look-up.</summary>
internal sealed class RejectMalformedPrefixedTokens : IOpenIddictServerHandler<ValidateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Singleton<ValidateTokenContext, RejectMalformedPrefixedTokens>(
        HandlerDescriptors.Before(OpenIddictServerHandlers.Protection.ValidateReferenceTokenIdentifier.Descriptor));

    public ValueTask HandleAsync(ValidateTokenContext context)
    {
        if (context.Token is { } token && TokenFormats.HasLatchkeyPrefix(token) && !TokenFormats.IsWellFormed(token))
        {
            context.Reject(Errors.InvalidToken, "The token is malformed.");
        }
        return ValueTask.CompletedTask;
    }
}

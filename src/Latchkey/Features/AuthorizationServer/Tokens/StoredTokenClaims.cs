using System.Buffers;
using System.Collections.Immutable;
using System.Security.Claims;
using System.Text.Json;
using Latchkey.Features.AuthorizationServer.Grants;
using Latchkey.Features.AuthorizationServer.Stores;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Latchkey.Features.AuthorizationServer.Tokens;

/// <summary>
/// What an access or refresh token in Latchkey's format means, kept in its row instead of an
/// encrypted payload: the row's columns (id, type, subject, app, authorization, dates) and these
/// properties (scopes, audiences, presenters, resources, and the few claims that are not rebuilt
/// from the user at use: the DPoP key, the token-exchange actor, an implied offline_access). Only
/// Latchkey reads these tokens back, so no signature or encryption is needed, and the direct grants
/// (<see cref="DirectTokenGrants"/>) write a token without OpenIddict's serializer. Nothing here is
/// a secret: the token itself is stored as a hash.
/// </summary>
public static class StoredTokenClaims
{
    public const string PresentersProperty = "lk_prst";
    public const string ResourcesProperty = "lk_rsrc";
    public const string ClaimsProperty = "lk_claims";

    /// <summary>The claims kept beside the columns; every other claim is rebuilt (sub) or re-read from the user (profile).</summary>
    private static readonly ImmutableHashSet<string> KeptClaims =
        [Claims.Confirmation, TokenExchange.ActorClaim, OAuthPrincipals.OfflineAccessImpliedClaim];

    /// <summary>The properties of a token issued for <paramref name="principal"/> (OpenIddict's prepared token principal).</summary>
    public static string Serialize(ClaimsPrincipal principal)
    {
        var kept = principal.Claims.Where(claim => KeptClaims.Contains(claim.Type))
            .Select(claim => new KeptClaim(claim.Type, claim.Value, claim.ValueType));
        return Serialize(principal.GetScopes(), principal.GetAudiences(), principal.GetPresenters(), principal.GetResources(),
            DPoPProofs.BoundThumbprint(principal.GetClaim(Claims.Confirmation)), kept);
    }

    /// <summary>The properties of a token, from its parts (the direct grants build them without a principal).</summary>
    public static string Serialize(IEnumerable<string> scopes, IEnumerable<string> audiences, IEnumerable<string> presenters,
        IEnumerable<string> resources, string? keyThumbprint, IEnumerable<KeptClaim> claims)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            WriteArray(writer, TokenFormats.ScopesProperty, scopes);
            WriteArray(writer, TokenFormats.AudiencesProperty, audiences);
            WriteArray(writer, PresentersProperty, presenters);
            WriteArray(writer, ResourcesProperty, resources);
            if (keyThumbprint is not null)
            {
                writer.WriteString(TokenFormats.KeyThumbprintProperty, keyThumbprint);
            }
            writer.WriteStartArray(ClaimsProperty);
            foreach (var claim in claims)
            {
                writer.WriteStartArray();
                writer.WriteStringValue(claim.Type);
                writer.WriteStringValue(claim.Value);
                writer.WriteStringValue(claim.ValueType);
                writer.WriteEndArray();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WriteArray(Utf8JsonWriter writer, string name, IEnumerable<string> values)
    {
        writer.WriteStartArray(name);
        foreach (var value in values)
        {
            writer.WriteStringValue(value);
        }
        writer.WriteEndArray();
    }

    /// <summary>True when the row's properties describe the token whole (rows written before this format carry an encrypted payload instead).</summary>
    public static bool IsComplete(JsonElement properties) =>
        properties.ValueKind == JsonValueKind.Object && properties.TryGetProperty(ClaimsProperty, out _) && properties.TryGetProperty(PresentersProperty, out _);

    /// <summary>The token's principal, rebuilt from its row, as OpenIddict would have read it from the payload.</summary>
    public static ClaimsPrincipal Restore(OAuthToken entry, JsonElement properties)
    {
        var identity = new ClaimsIdentity(TokenValidationParameters.DefaultAuthenticationType, Claims.Name, Claims.Role);
        if (entry.Subject is { } subject)
        {
            identity.SetClaim(Claims.Subject, subject);
        }
        identity.SetScopes(ReadArray(properties, TokenFormats.ScopesProperty))
            .SetAudiences(ReadArray(properties, TokenFormats.AudiencesProperty))
            .SetPresenters(ReadArray(properties, PresentersProperty))
            .SetResources(ReadArray(properties, ResourcesProperty));
        if (properties.TryGetProperty(ClaimsProperty, out var claims) && claims.ValueKind == JsonValueKind.Array)
        {
            foreach (var claim in claims.EnumerateArray())
            {
                if (claim.ValueKind == JsonValueKind.Array && claim.GetArrayLength() == 3)
                {
                    identity.AddClaim(new Claim(claim[0].GetString()!, claim[1].GetString()!, claim[2].GetString()));
                }
            }
        }
        if (entry.Type == TokenTypeIdentifiers.AccessToken)
        {
            // RFC 9068's client_id and jti, as OpenIddict writes them into an access token (its jti is
            // random; the row's id is as unique, and the same each time the token is read).
            identity.SetClaim(Claims.ClientId, ReadArray(properties, PresentersProperty).FirstOrDefault());
            identity.SetClaim(Claims.JwtId, entry.Id);
        }
        var principal = new ClaimsPrincipal(identity);
        // The authorization id and the dates are restored from the row by OpenIddict (RestoreTokenEntryProperties) as for any token.
        principal.SetTokenId(entry.Id).SetTokenType(entry.Type);
        if (entry.CreationDate is { } created)
        {
            principal.SetCreationDate(new DateTimeOffset(DateTime.SpecifyKind(created, DateTimeKind.Utc)));
        }
        if (entry.ExpirationDate is { } expires)
        {
            principal.SetExpirationDate(new DateTimeOffset(DateTime.SpecifyKind(expires, DateTimeKind.Utc)));
        }
        return principal;
    }

    public static string[] ReadArray(JsonElement properties, string name) =>
        properties.ValueKind == JsonValueKind.Object && properties.TryGetProperty(name, out var values) && values.ValueKind == JsonValueKind.Array
            ? [.. values.EnumerateArray().Select(value => value.GetString() ?? "")]
            : [];

    /// <summary>A claim kept in a token's row: its type, value and value type (JSON objects such as <c>cnf</c> and <c>act</c> keep theirs).</summary>
    public readonly record struct KeptClaim(string Type, string Value, string ValueType)
    {
        public static KeptClaim Json(string type, string json) => new(type, json, JsonClaimValueTypes.Json);

        public static KeptClaim Text(string type, string value) => new(type, value, ClaimValueTypes.String);
    }
}

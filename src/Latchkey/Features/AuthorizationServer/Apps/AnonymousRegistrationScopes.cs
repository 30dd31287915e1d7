using Latchkey.Common;
using Latchkey.Features.Scopes;
using Microsoft.Extensions.Options;

using OidcScopes = OpenIddict.Abstractions.OpenIddictConstants.Scopes;

namespace Latchkey.Features.AuthorizationServer.Apps;

/// <summary>
/// What a client registering itself without an initial access token may be registered for
/// (<c>AuthorizationServer:AnonymousRegistrationScopes</c>): nobody has vouched for it, so it gets a
/// small set rather than the catalog, even though each user still decides on the consent page.
/// </summary>
public sealed class AnonymousRegistrationScopes
{
    public AnonymousRegistrationScopes(IOptions<AuthorizationServerOptions> options, ScopeCatalog catalog)
    {
        Allowed = options.Value.AnonymousRegistrationScopes is { Length: > 0 } configured
            ? configured.Distinct(StringComparer.Ordinal).ToArray()
            // The default names catalog scopes a configured catalog may not have; those are left out.
            : AuthorizationServerOptions.DefaultAnonymousRegistrationScopes.Where(s => IsKnown(s, catalog)).ToArray();
    }

    /// <summary>The scopes registered when the client asks for none, and the most it may ask for.</summary>
    public IReadOnlyList<string> Allowed { get; }

    /// <summary>
    /// Whether a requested scope is within the allowed set. <c>offline_access</c> always is: every
    /// user grant comes with it anyway, and clients often list it.
    /// </summary>
    public bool Permits(string scope) => scope == OidcScopes.OfflineAccess || Allowed.Contains(scope, StringComparer.Ordinal);

    internal static bool IsKnown(string scope, ScopeCatalog catalog) => catalog.Contains(scope) || AuthorizationServerSetup.OpenIdScopes.Contains(scope);
}

/// <summary>
/// Each configured anonymous registration scope must be one the server knows, or no client could
/// use it; the client metadata document settings must make sense together.
/// </summary>
internal sealed class AuthorizationServerOptionsValidator(ScopeCatalog catalog) : IValidateOptions<AuthorizationServerOptions>
{
    public ValidateOptionsResult Validate(string? name, AuthorizationServerOptions options)
    {
        var failures = new List<string>();
        var configured = options.AnonymousRegistrationScopes ?? [];
        for (var i = 0; i < configured.Length; i++)
        {
            if (!AnonymousRegistrationScopes.IsKnown(configured[i], catalog))
            {
                failures.Add($"AuthorizationServer:AnonymousRegistrationScopes:{i} {InputEcho.Quote(configured[i])} is not a known scope " +
                             $"(the scope catalog, {string.Join(", ", AuthorizationServerSetup.OpenIdScopes)}).");
            }
        }
        failures.AddRange(ClientMetadataDocuments.OptionProblems(options.ClientMetadataDocuments));
        failures.AddRange(Tokens.DPoPProofs.OptionProblems(options.DPoP));
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

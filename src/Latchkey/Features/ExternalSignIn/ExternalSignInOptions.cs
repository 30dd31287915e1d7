using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.ExternalSignIn;

/// <summary>The kinds of identity provider people may sign in with.</summary>
public enum ExternalProviderType
{
    /// <summary>Any OpenID Connect issuer, found through its discovery document (<c>Issuer</c>).</summary>
    OpenIdConnect,
    GitHub,
    Google,
    Microsoft,
}

/// <summary>One identity provider, under <c>ExternalSignIn:Providers:{name}</c>; the name is what URLs and the security log use.</summary>
public sealed class ExternalProviderOptions
{
    public ExternalProviderType Type { get; set; } = ExternalProviderType.OpenIdConnect;

    /// <summary>What the sign-in button says after "Sign in with". Defaults to the type's name, or the provider's name.</summary>
    public string? DisplayName { get; set; }

    /// <summary>For <see cref="ExternalProviderType.OpenIdConnect"/>: the issuer URL (its <c>/.well-known/openid-configuration</c> is read).</summary>
    public string? Issuer { get; set; }

    /// <summary>For <see cref="ExternalProviderType.Microsoft"/>: the tenant (<c>common</c>, <c>organizations</c>, or a tenant id).</summary>
    public string? Tenant { get; set; }

    [Required]
    public string ClientId { get; set; } = "";

    public string? ClientSecret { get; set; }

    /// <summary>Scopes beyond the ones Latchkey asks for (<c>openid email profile</c> for OpenID Connect issuers).</summary>
    public List<string> Scopes { get; set; } = [];
}

public sealed class ExternalSignInOptions
{
    public const string SectionName = "ExternalSignIn";

    public Dictionary<string, ExternalProviderOptions> Providers { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The name a button shows for a provider.</summary>
    public static string DisplayNameOf(string name, ExternalProviderOptions provider) =>
        !string.IsNullOrWhiteSpace(provider.DisplayName) ? provider.DisplayName
        : provider.Type == ExternalProviderType.OpenIdConnect ? name
        : provider.Type.ToString();
}

/// <summary>Refuses at start a provider that could never work, naming it and what to set.</summary>
internal sealed class ExternalSignInOptionsValidator : IValidateOptions<ExternalSignInOptions>
{
    public ValidateOptionsResult Validate(string? name, ExternalSignInOptions options)
    {
        var problems = new List<string>();
        foreach (var (key, provider) in options.Providers)
        {
            var at = $"ExternalSignIn:Providers:{key}";
            if (!System.Text.RegularExpressions.Regex.IsMatch(key, "^[a-z0-9][a-z0-9-]{0,39}$"))
            {
                problems.Add($"{at}: the name must be 1 to 40 lower-case letters, digits or dashes (it is part of URLs and the security log).");
            }
            if (string.IsNullOrWhiteSpace(provider.ClientId))
            {
                problems.Add($"{at}:ClientId is required (the id the provider gave this Latchkey).");
            }
            if (provider.Type == ExternalProviderType.OpenIdConnect &&
                (!Uri.TryCreate(provider.Issuer, UriKind.Absolute, out var issuer) || issuer.Scheme is not ("https" or "http")))
            {
                problems.Add($"{at}:Issuer must be the provider's absolute issuer URL (https).");
            }
            if (provider.Type != ExternalProviderType.OpenIdConnect && string.IsNullOrWhiteSpace(provider.ClientSecret))
            {
                problems.Add($"{at}:ClientSecret is required for {provider.Type}.");
            }
        }
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}

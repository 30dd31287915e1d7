using System.Collections.Immutable;
using System.Text.Json;
using Latchkey.Common;
using Latchkey.Features.AuthorizationServer.Stores;
using Latchkey.Features.Scopes;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

using OidcScopes = OpenIddict.Abstractions.OpenIddictConstants.Scopes;

namespace Latchkey.Features.AuthorizationServer.Apps;

/// <summary>
/// What an app owner sends to register or change an app. <paramref name="GrantTypes"/> unset:
/// authorization_code and refresh_token, with client_credentials for a confidential app; the device
/// and token exchange grants are asked for by name (<see cref="AppGrantTypes"/>).
/// </summary>
public sealed record OAuthAppRequest(
    string? Name, string? Description, string? HomepageUrl, string[]? RedirectUris, string[]? Scopes, bool? Confidential,
    string[]? GrantTypes = null, bool? RequirePushedAuthorizationRequests = null);

/// <summary>An app as its owner sees it.</summary>
public sealed record OAuthAppView(
    string ClientId, string Name, string? Description, string? HomepageUrl, string? LogoUrl,
    IReadOnlyList<string> RedirectUris, IReadOnlyList<string> Scopes, string ClientType, bool Enabled, DateTimeOffset CreatedAt,
    IReadOnlyList<string> GrantTypes, bool RequirePushedAuthorizationRequests);

/// <summary>The grants an app may be registered for (RFC 7591 <c>grant_types</c> values).</summary>
public static class AppGrantTypes
{
    public static readonly string[] Supported =
    [
        GrantTypes.AuthorizationCode, GrantTypes.RefreshToken, GrantTypes.ClientCredentials, GrantTypes.DeviceCode, GrantTypes.TokenExchange,
    ];

    public static string[] Default(bool confidential) => confidential
        ? [GrantTypes.AuthorizationCode, GrantTypes.RefreshToken, GrantTypes.ClientCredentials]
        : [GrantTypes.AuthorizationCode, GrantTypes.RefreshToken];

    /// <summary>Why these grants cannot be registered, or null when they can.</summary>
    public static string? Problem(IReadOnlyCollection<string> grants, bool confidential)
    {
        if (grants.Count == 0)
        {
            return $"List at least one grant type: {string.Join(", ", Supported)}.";
        }
        if (grants.FirstOrDefault(g => !Supported.Contains(g)) is { } unknown)
        {
            return $"The grant type {InputEcho.Quote(unknown)} is not supported; use {string.Join(", ", Supported)}.";
        }
        if (grants.Distinct(StringComparer.Ordinal).Count() != grants.Count)
        {
            return "A grant type is listed twice.";
        }
        return grants.Contains(GrantTypes.ClientCredentials) && !confidential
            ? "client_credentials needs a confidential app: a public client has no secret to prove who it is."
            : null;
    }
}

/// <summary>An app's name, whether it is enabled and where it may send people back to (for pages that return a user to it).</summary>
public sealed record OAuthAppReturnAddresses(string ClientId, string Name, bool Enabled, IReadOnlyList<string> RedirectUris);

/// <summary>What anyone may know about an app (shown on the consent page).</summary>
public sealed record OAuthAppPublicInfo(
    string ClientId, string Name, string? Description, string? HomepageUrl, string? LogoUrl, string? Owner, IReadOnlyList<string> Scopes);

/// <summary>Registering and managing OAuth apps, for their owners, the CLI and dynamic registration.</summary>
public sealed class OAuthAppService(
    OAuthApplicationManager applications,
    LatchkeyDbContext db,
    ScopeCatalog catalog,
    PlatformNames platformNames,
    TimeProvider time)
{
    public static string NewClientId() => Identifiers.New("lk_client");

    public string[] CatalogScopeNames() => [.. catalog.All.Select(s => s.Name), .. AuthorizationServerSetup.OpenIdScopes.Where(s => s != OidcScopes.OfflineAccess)];

    public static string LogoUrl(string clientId, int version) => $"/api/oauth/apps/{Uri.EscapeDataString(clientId)}/logo?v={version}";

    public sealed record Created(OAuthApplication Application, string? ClientSecret);

    /// <summary>
    /// Registers an app owned by <paramref name="ownerId"/> (null for self-registered clients), for a
    /// signed-in user or a client registering itself: its name may not imitate the platform's.
    /// </summary>
    public Task<(Created? Created, Dictionary<string, string[]> Errors)> CreateAsync(string? ownerId, OAuthAppRequest request, CancellationToken cancellationToken) =>
        CreateAsync(ownerId, request, mayUsePlatformName: false, cancellationToken);

    /// <summary>
    /// Registers a first-party app for the operator (<c>latchkey apps create</c>), such as a
    /// "Latchkey Console": the rule against imitating the platform's name is for everyone else.
    /// </summary>
    public Task<(Created? Created, Dictionary<string, string[]> Errors)> CreateFirstPartyAsync(string ownerId, OAuthAppRequest request, CancellationToken cancellationToken) =>
        CreateAsync(ownerId, request, mayUsePlatformName: true, cancellationToken);

    /// <summary>
    /// Stores the app a client metadata document describes (<see cref="ClientMetadataDocuments"/>),
    /// new or refreshed: public, with no owner, the document's URL as its client id, and redirect
    /// URIs matched exactly (no loopback port variance: the document lists what it uses).
    /// </summary>
    public async Task<Dictionary<string, string[]>> SaveFromMetadataDocumentAsync(
        OAuthApplication? existing, string documentUrl, OAuthAppRequest request, DateTimeOffset expiresAt, CancellationToken cancellationToken)
    {
        if (existing is null)
        {
            var (_, errors) = await CreateAsync(null, request, mayUsePlatformName: false, cancellationToken, documentUrl, expiresAt);
            return errors;
        }
        existing.MetadataDocumentExpiresAt = expiresAt;
        return await UpdateAsync(existing, request, cancellationToken);
    }

    private async Task<(Created? Created, Dictionary<string, string[]> Errors)> CreateAsync(
        string? ownerId, OAuthAppRequest request, bool mayUsePlatformName, CancellationToken cancellationToken,
        string? documentUrl = null, DateTimeOffset? metadataDocumentExpiresAt = null)
    {
        var errors = Validate(request, creating: true, mayUsePlatformName);
        if (errors.Count > 0)
        {
            return (null, errors);
        }
        var confidential = request.Confidential ?? false;
        var secret = confidential ? OAuthApplicationManager.SecretFormat.Generate() : null;
        var descriptor = Describe(documentUrl ?? NewClientId(), request.Name!.Trim(), request.RedirectUris ?? [], request.Scopes!, confidential,
            request.GrantTypes ?? AppGrantTypes.Default(confidential), request.RequirePushedAuthorizationRequests ?? false,
            exactRedirects: documentUrl is not null);

        var application = new OAuthApplication
        {
            OwnerId = ownerId,
            Description = request.Description?.Trim(),
            HomepageUrl = request.HomepageUrl?.Trim(),
            CreatedAt = time.GetUtcNow(),
            MetadataDocumentExpiresAt = metadataDocumentExpiresAt,
        };
        await applications.PopulateAsync(application, descriptor, cancellationToken);
        await applications.CreateAsync(application, secret, cancellationToken);
        return (new Created(application, secret), errors);
    }

    public async Task<List<OAuthAppView>> ListOwnedAsync(string ownerId, CancellationToken cancellationToken)
    {
        var owned = await db.OAuthApplications.AsNoTracking().Where(a => a.OwnerId == ownerId).ToListAsync(cancellationToken);
        return owned.OrderBy(a => a.CreatedAt).Select(View).ToList();
    }

    /// <summary>The owner's app, or null when there is none with that client id (or someone else owns it).</summary>
    public async Task<OAuthApplication?> FindOwnedAsync(string ownerId, string clientId, CancellationToken cancellationToken) =>
        await applications.FindByClientIdAsync(clientId, cancellationToken) is { } app && app.OwnerId == ownerId ? app : null;

    public async Task<OAuthAppReturnAddresses?> FindReturnAddressesAsync(string clientId, CancellationToken cancellationToken) =>
        await applications.FindByClientIdAsync(clientId, cancellationToken) is { } app
            ? new OAuthAppReturnAddresses(app.ClientId!, app.DisplayName ?? app.ClientId!, app.Enabled,
                [.. await applications.GetRedirectUrisAsync(app, cancellationToken)])
            : null;

    public async Task<OAuthAppPublicInfo?> GetPublicInfoAsync(string clientId, CancellationToken cancellationToken)
    {
        var app = await db.OAuthApplications.AsNoTracking().Include(a => a.Owner)
            .FirstOrDefaultAsync(a => a.ClientId == clientId, cancellationToken);
        return app is null
            ? null
            : new OAuthAppPublicInfo(app.ClientId!, app.DisplayName ?? app.ClientId!, app.Description, app.HomepageUrl,
                app.LogoVersion > 0 ? LogoUrl(app.ClientId!, app.LogoVersion) : null, app.Owner?.DisplayName, ScopesOf(app.Permissions));
    }

    public async Task<Dictionary<string, string[]>> UpdateAsync(OAuthApplication app, OAuthAppRequest request, CancellationToken cancellationToken)
    {
        // A name kept as it is was accepted before (perhaps from the operator); only a new name must not imitate the platform's.
        var errors = Validate(request, creating: false, mayUsePlatformName: request.Name?.Trim() == app.DisplayName);
        if (errors.Count > 0)
        {
            return errors;
        }
        var confidential = await applications.HasClientTypeAsync(app, ClientTypes.Confidential, cancellationToken);
        if (request.Confidential is { } wanted && wanted != confidential)
        {
            errors["confidential"] = ["An app's client type cannot change; register a new app instead."];
            return errors;
        }
        var grants = request.GrantTypes ?? GrantTypesOf(app.Permissions);
        if (AppGrantTypes.Problem(grants, confidential) is { } grantProblem)
        {
            errors["grant_types"] = [grantProblem];
            return errors;
        }
        var redirectUris = request.RedirectUris ?? [.. await applications.GetRedirectUrisAsync(app, cancellationToken)];
        if (grants.Contains(GrantTypes.AuthorizationCode) && redirectUris.Length == 0)
        {
            errors["redirect_uris"] = ["The authorization_code grant needs at least one redirect URI."];
            return errors;
        }
        var descriptor = Describe(app.ClientId!,
            request.Name?.Trim() ?? app.DisplayName!,
            redirectUris,
            request.Scopes ?? ScopesOf(app.Permissions).ToArray(),
            confidential,
            grants,
            request.RequirePushedAuthorizationRequests ?? RequiresPushedAuthorizationRequests(app),
            exactRedirects: app.MetadataDocumentExpiresAt is not null);
        // Populating from a descriptor would clear the stored (hashed) secret; keep it.
        var storedSecret = app.ClientSecret;
        await applications.PopulateAsync(app, descriptor, cancellationToken);
        app.ClientSecret = storedSecret;
        if (request.Description is not null)
        {
            app.Description = request.Description.Trim();
        }
        if (request.HomepageUrl is not null)
        {
            app.HomepageUrl = request.HomepageUrl.Trim();
        }
        await applications.UpdateAsync(app, cancellationToken);
        return errors;
    }

    /// <summary>Enables or disables an app. Disabling stops its tokens at once (they are checked on every use).</summary>
    public async Task SetEnabledAsync(OAuthApplication app, bool enabled, CancellationToken cancellationToken)
    {
        app.Enabled = enabled;
        await applications.UpdateAsync(app, cancellationToken);
    }

    /// <summary>Saves changes to Latchkey's own fields of an app (logo version).</summary>
    public Task SaveAsync(OAuthApplication app, CancellationToken cancellationToken) =>
        applications.UpdateAsync(app, cancellationToken).AsTask();

    /// <summary>Checks and stores a new logo (PNG, JPEG, WebP or a safe SVG). Returns the problem, or null when stored.</summary>
    public async Task<string?> SetLogoAsync(OAuthApplication app, string? contentType, byte[] content, CancellationToken cancellationToken)
    {
        var checkedLogo = LogoImages.Check(contentType, content);
        if (checkedLogo.Error is not null)
        {
            return checkedLogo.Error;
        }
        var logo = await db.OAuthAppLogos.FirstOrDefaultAsync(l => l.ApplicationId == app.Id, cancellationToken);
        if (logo is null)
        {
            db.OAuthAppLogos.Add(new OAuthAppLogo
            {
                ApplicationId = app.Id!, ContentType = checkedLogo.ContentType!, Content = checkedLogo.Content!, UpdatedAt = time.GetUtcNow(),
            });
        }
        else
        {
            logo.ContentType = checkedLogo.ContentType!;
            logo.Content = checkedLogo.Content!;
            logo.UpdatedAt = time.GetUtcNow();
        }
        await db.SaveChangesAsync(cancellationToken);
        app.LogoVersion++;
        await SaveAsync(app, cancellationToken);
        return null;
    }

    /// <summary>Replaces a confidential app's secret; the old one stops working at once. Null for public apps.</summary>
    public async Task<string?> RotateSecretAsync(OAuthApplication app, CancellationToken cancellationToken)
    {
        if (!await applications.HasClientTypeAsync(app, ClientTypes.Confidential, cancellationToken))
        {
            return null;
        }
        var secret = OAuthApplicationManager.SecretFormat.Generate();
        await applications.UpdateAsync(app, secret, cancellationToken);
        return secret;
    }

    /// <summary>Deletes the app with its authorizations and tokens.</summary>
    public Task DeleteAsync(OAuthApplication app, CancellationToken cancellationToken) =>
        applications.DeleteAsync(app, cancellationToken).AsTask();

    public OAuthAppView View(OAuthApplication app) => new(
        app.ClientId!, app.DisplayName ?? app.ClientId!, app.Description, app.HomepageUrl,
        app.LogoVersion > 0 ? LogoUrl(app.ClientId!, app.LogoVersion) : null,
        ParseArray(app.RedirectUris), ScopesOf(app.Permissions),
        app.ClientType ?? ClientTypes.Public, app.Enabled, app.CreatedAt,
        GrantTypesOf(app.Permissions), RequiresPushedAuthorizationRequests(app));

    private static OpenIddictApplicationDescriptor Describe(string clientId, string name, IReadOnlyCollection<string> redirectUris, IReadOnlyCollection<string> scopes,
        bool confidential, IReadOnlyCollection<string> grants, bool requirePushedAuthorizationRequests, bool exactRedirects)
    {
        var descriptor = new OpenIddictApplicationDescriptor
        {
            ClientId = clientId,
            DisplayName = name,
            ClientType = confidential ? ClientTypes.Confidential : ClientTypes.Public,
            // Native apps (loopback or private-use redirects) may vary the loopback port (RFC 8252).
            ApplicationType = !confidential && !exactRedirects && redirectUris.Any(IsNativeRedirect) ? ApplicationTypes.Native : ApplicationTypes.Web,
            ConsentType = ConsentTypes.Explicit,
            Requirements = { Requirements.Features.ProofKeyForCodeExchange },
            // Endpoint permissions are not checked (see AuthorizationServerSetup); grant types are.
            Permissions =
            {
                Permissions.Endpoints.Authorization,
                Permissions.Endpoints.Token,
                Permissions.Endpoints.Introspection,
                Permissions.Endpoints.Revocation,
            },
        };
        foreach (var grant in grants)
        {
            descriptor.Permissions.Add(Permissions.Prefixes.GrantType + grant);
        }
        if (grants.Contains(GrantTypes.AuthorizationCode))
        {
            descriptor.Permissions.Add(Permissions.ResponseTypes.Code);
        }
        if (requirePushedAuthorizationRequests)
        {
            descriptor.Requirements.Add(Requirements.Features.PushedAuthorizationRequests);
        }
        foreach (var scope in scopes)
        {
            descriptor.Permissions.Add(Permissions.Prefixes.Scope + scope);
        }
        foreach (var uri in redirectUris)
        {
            descriptor.RedirectUris.Add(new Uri(uri, UriKind.Absolute));
        }
        return descriptor;
    }

    private Dictionary<string, string[]> Validate(OAuthAppRequest request, bool creating, bool mayUsePlatformName)
    {
        var errors = new Dictionary<string, string[]>();
        if (creating || request.Name is not null)
        {
            if (DisplayedText.IsBlank(request.Name) || request.Name!.Trim().Length > OAuthAppLimits.NameMaxLength)
            {
                errors["name"] = [$"Give the app a name of 1 to {OAuthAppLimits.NameMaxLength} visible characters; people see it on the consent page."];
            }
            else if (DisplayedText.Problem("name", request.Name) is { } hidden)
            {
                errors["name"] = [hidden];
            }
            else if (!mayUsePlatformName && platformNames.Imitated(request.Name) is { } imitated)
            {
                errors["name"] = [$"The name {InputEcho.Quote(request.Name.Trim())} looks like {imitated}'s own; people would take the app for {imitated} itself. Choose a name of your own."];
            }
        }
        if (request.Description is { Length: > OAuthAppLimits.DescriptionMaxLength })
        {
            errors["description"] = [$"The description may have at most {OAuthAppLimits.DescriptionMaxLength} characters."];
        }
        else if (DisplayedText.Problem("description", request.Description, allowLineBreaks: true) is { } hidden)
        {
            errors["description"] = [hidden];
        }
        if (DisplayedText.Problem("homepage", request.HomepageUrl) is { } hiddenInHomepage)
        {
            errors["homepage_url"] = [hiddenInHomepage];
        }
        else if (!string.IsNullOrWhiteSpace(request.HomepageUrl) &&
            (!Uri.TryCreate(request.HomepageUrl.Trim(), UriKind.Absolute, out var homepage) || homepage.Scheme is not ("https" or "http") ||
             request.HomepageUrl.Length > OAuthAppLimits.UrlMaxLength))
        {
            errors["homepage_url"] = ["The homepage must be an http or https URL."];
        }
        if (creating && AppGrantTypes.Problem(request.GrantTypes ?? AppGrantTypes.Default(request.Confidential ?? false), request.Confidential ?? false) is { } grantProblem)
        {
            errors["grant_types"] = [grantProblem];
        }
        // An app without the code flow (a device-flow tool, a backend) need not list redirect URIs.
        var codeFlow = request.GrantTypes?.Contains(GrantTypes.AuthorizationCode) ?? true;
        if ((creating && codeFlow) || request.RedirectUris is not null)
        {
            var uris = request.RedirectUris ?? [];
            if ((uris.Length == 0 && codeFlow) || uris.Length > OAuthAppLimits.MaxRedirectUris)
            {
                errors["redirect_uris"] = [$"Register 1 to {OAuthAppLimits.MaxRedirectUris} redirect URIs."];
            }
            else if (uris.Select(RedirectUriProblem).FirstOrDefault(p => p is not null) is { } problem)
            {
                errors["redirect_uris"] = [problem];
            }
        }
        if (creating || request.Scopes is not null)
        {
            var scopes = request.Scopes ?? [];
            var unknown = scopes.FirstOrDefault(s => !catalog.Contains(s) && !AuthorizationServerSetup.OpenIdScopes.Contains(s));
            if (scopes.Length == 0)
            {
                errors["scopes"] = ["List the scopes the app may request (GET /api/scopes)."];
            }
            else if (unknown is not null)
            {
                errors["scopes"] = [$"Unknown scope {InputEcho.Quote(unknown)}. Known scopes: {string.Join(", ", catalog.All.Select(s => s.Name).Concat(AuthorizationServerSetup.OpenIdScopes))}."];
            }
            else if (scopes.Distinct(StringComparer.Ordinal).Count() != scopes.Length)
            {
                errors["scopes"] = ["A scope is listed twice."];
            }
        }
        return errors;
    }

    /// <summary>Why a redirect URI cannot be registered, or null when it can.</summary>
    public static string? RedirectUriProblem(string? uri)
    {
        // Checked first: the consent page shows the redirect host, and the messages below repeat the URI.
        if (DisplayedText.FirstHiddenCharacter(uri) is { } hidden)
        {
            return $"A redirect URI contains an invisible or control character ({hidden}).";
        }
        if (string.IsNullOrWhiteSpace(uri) || uri.Length > OAuthAppLimits.UrlMaxLength || !Uri.TryCreate(uri, UriKind.Absolute, out var parsed))
        {
            return $"{InputEcho.Quote(uri)} is not an absolute URI.";
        }
        if (!string.IsNullOrEmpty(parsed.Fragment))
        {
            return $"{InputEcho.Quote(uri)} has a fragment; redirect URIs may not (RFC 6749 §3.1.2).";
        }
        if (parsed.Scheme == Uri.UriSchemeHttps || (parsed.Scheme == Uri.UriSchemeHttp && parsed.IsLoopback) || IsPrivateUseScheme(parsed))
        {
            return null;
        }
        return $"{InputEcho.Quote(uri)} must use https, http on a loopback address (127.0.0.1, [::1], localhost), or a private-use scheme like com.example.app:/callback.";
    }

    public static bool IsNativeRedirect(string uri) =>
        Uri.TryCreate(uri, UriKind.Absolute, out var parsed) && ((parsed.Scheme == Uri.UriSchemeHttp && parsed.IsLoopback) || IsPrivateUseScheme(parsed));

    // RFC 8252 §7.1: a reverse-domain scheme such as com.example.app.
    private static bool IsPrivateUseScheme(Uri uri) => uri.Scheme.Contains('.', StringComparison.Ordinal) && uri.Scheme is not ("http" or "https");

    internal static string[] GrantTypesOf(string? permissionsJson) =>
        [.. ParseArray(permissionsJson).Where(p => p.StartsWith(Permissions.Prefixes.GrantType, StringComparison.Ordinal))
            .Select(p => p[Permissions.Prefixes.GrantType.Length..])];

    internal static bool RequiresPushedAuthorizationRequests(OAuthApplication app) =>
        ParseArray(app.Requirements).Contains(Requirements.Features.PushedAuthorizationRequests);

    internal static IReadOnlyList<string> ScopesOf(string? permissionsJson) =>
        ParseArray(permissionsJson).Where(p => p.StartsWith(Permissions.Prefixes.Scope, StringComparison.Ordinal))
            .Select(p => p[Permissions.Prefixes.Scope.Length..]).ToList();

    private static string[] ParseArray(string? json) =>
        string.IsNullOrEmpty(json) ? [] : JsonSerializer.Deserialize<string[]>(json) ?? [];

}

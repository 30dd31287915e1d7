using Latchkey.Common;
using Latchkey.Features.Broker.Credentials;
using Latchkey.Features.Broker.Flows;
using Latchkey.Features.Broker.Providers;
using Latchkey.Features.Site;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Latchkey.Features.Broker.Pages;

/// <summary>
/// The user's third-party connections (the broker's credentials): see them, connect a provider,
/// reconnect one that needs it (a new authorization replaces the old credential), disconnect.
/// The provider sends the user back to <see cref="CallbackPath"/>.
/// </summary>
[Authorize]
public sealed class ConnectionsModel(CredentialService credentials, ProviderService providers, FlowService flows) : PageModel
{
    public const string CallbackPath = ProfileNavigation.Connections + "/callback";

    /// <summary>Which credential a flow in progress replaces, kept in the (protected) TempData cookie between the two requests.</summary>
    private const string ReplacesKey = "connections.replaces";

    public IReadOnlyList<Credential> Credentials { get; private set; } = [];

    public IReadOnlyList<ProviderInstance> Providers { get; private set; } = [];

    [TempData]
    public string? Notice { get; set; }

    public string ProviderName(Credential credential) =>
        Providers.FirstOrDefault(p => p.Id == credential.ProviderInstanceId)?.Name ?? credential.ProviderKey;

    public async Task OnGetAsync(CancellationToken cancellationToken) => await LoadAsync(cancellationToken);

    public async Task<IActionResult> OnPostConnectAsync(string providerId, CancellationToken cancellationToken) =>
        await StartAsync(providerId, null, null, cancellationToken);

    /// <summary>A typed-in credential (API key, token, ...) for a provider that takes one; tried with the provider first.</summary>
    public async Task<IActionResult> OnPostCredentialAsync(string providerId, Dictionary<string, string> fields, CancellationToken cancellationToken)
    {
        if (await providers.FindVisibleAsync(User.UserId(), providerId, cancellationToken) is not { } provider)
        {
            return NotFound();
        }
        var (created, error) = await credentials.CreateAsync(User.UserId(), CredentialMaterial.FromForm(provider.Definition, provider.Id, fields, null, null), cancellationToken);
        Notice = created is null ? $"Not saved: {error!.Message}" : $"Saved your {provider.Name} credential. Your agents can use it now.";
        return RedirectToPage();
    }

    public async Task<IActionResult> OnPostReconnectAsync(string credentialId, CancellationToken cancellationToken)
    {
        if (await credentials.FindAsync(User.UserId(), credentialId, cancellationToken) is not { } credential)
        {
            return NotFound();
        }
        return await StartAsync(credential.ProviderInstanceId, credential.Id, credential.Scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries), cancellationToken);
    }

    public async Task<IActionResult> OnPostDisconnectAsync(string credentialId, CancellationToken cancellationToken)
    {
        var credential = await credentials.FindAsync(User.UserId(), credentialId, cancellationToken);
        Notice = credential is not null && await credentials.DeleteAsync(User.UserId(), credentialId, cancellationToken)
            ? $"Disconnected {credential.ExternalAccountLabel ?? credential.ProviderKey}: Latchkey no longer holds its tokens."
            : "That connection no longer exists.";
        return RedirectToPage();
    }

    /// <summary>Where the provider sends the user back: store the credential, then show the list.</summary>
    public async Task<IActionResult> OnGetCallbackAsync(string? code, string? state, string? error, CancellationToken cancellationToken)
    {
        var replaces = TempData[ReplacesKey] as string;
        var (exchanged, problem) = await flows.CompleteRedirectAsync(User.UserId(), code, state, error, cancellationToken);
        if (exchanged is not null && replaces is { Length: > 0 } old && old.Split('|') is [var forState, var credentialId] && forState == state)
        {
            await credentials.DeleteAsync(User.UserId(), credentialId, cancellationToken);
        }
        Notice = problem ?? "Connected. Your agents can use it now.";
        return RedirectToPage();
    }

    private async Task<IActionResult> StartAsync(string providerId, string? replaces, string[]? scopes, CancellationToken cancellationToken)
    {
        var callback = $"{Request.Scheme}://{Request.Host}{Request.PathBase}{CallbackPath}";
        var (started, error) = await flows.InitAsync(User.UserId(), providerId, callback, scopes, cancellationToken);
        if (started is null)
        {
            Notice = $"The connection could not be started: {error!.Message}";
            return RedirectToPage();
        }
        if (replaces is not null)
        {
            TempData[ReplacesKey] = $"{started.State}|{replaces}";
        }
        return Redirect(started.AuthUrl);
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        Credentials = await credentials.ListAsync(User.UserId(), cancellationToken);
        Providers = await providers.ListVisibleAsync(User.UserId(), cancellationToken);
        // Connect and Reconnect lead on to the provider's authorization page.
        var policy = ContentSecurityPolicy.For(HttpContext);
        foreach (var provider in Providers)
        {
            policy.AllowFormTarget(provider.Definition.AuthorizeUrl);
        }
    }
}

using System.Text;
using System.Text.Json;
using Latchkey.Common;
using Latchkey.Features.AuthorizationServer.Apps;
using Latchkey.Features.Broker.Credentials;
using Latchkey.Features.Broker.Flows;
using Latchkey.Features.Broker.Providers;
using Latchkey.Features.Site;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.AspNetCore.WebUtilities;

namespace Latchkey.Features.Broker.Pages;

/// <summary>
/// The integrations setup wizard (<c>../shared/spec/sso.md</c>): an app sends a user here with
/// the providers (and scopes) it needs and one of its registered redirect URIs; the user connects
/// each through the broker's flow, then returns to the app with <c>success=true|false</c>.
/// </summary>
[Authorize]
public sealed class SetupWizardModel(
    OAuthAppService apps,
    ProviderService providers,
    CredentialService credentials,
    FlowService flows) : PageModel
{
    public const string Path = "/auth/integrations/setup-wizard";
    public const string CallbackPath = Path + "/callback";

    /// <summary>The wizard's own query string, kept in the (protected) TempData cookie while the user is at a provider.</summary>
    private const string ResumeKey = "wizard.resume";

    [BindProperty(SupportsGet = true, Name = "client_id")]
    public string? ClientId { get; set; }

    [BindProperty(SupportsGet = true, Name = "providers")]
    public string? ProvidersParameter { get; set; }

    [BindProperty(SupportsGet = true, Name = "redirect_uri")]
    public string? RedirectUri { get; set; }

    [BindProperty(SupportsGet = true, Name = "state")]
    public string? State { get; set; }

    [TempData]
    public string? Notice { get; set; }

    /// <summary>Why the wizard cannot run at all (unknown app, unregistered return URL): the user is not sent back.</summary>
    public string? Fatal { get; private set; }

    /// <summary>Why the request cannot be completed, although the app can be told (success=false).</summary>
    public string? Problem { get; private set; }

    public string AppName { get; private set; } = "";

    public IReadOnlyList<WizardStep> Steps { get; private set; } = [];

    public bool AllDone => Steps.Count > 0 && Steps.All(s => s.Done);

    public sealed record WizardStep(int Index, string ProviderKey, string Name, IReadOnlyList<string> Scopes, ProviderInstance? Instance, Credential? Credential)
    {
        public bool Done => Credential is not null;
    }

    private sealed record RequestedProvider(string Provider, string[]? Scopes);

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        await LoadAsync(cancellationToken);
        if (Fatal is not null)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
        }
        return Page();
    }

    public async Task<IActionResult> OnPostConnectAsync(int step, CancellationToken cancellationToken)
    {
        await LoadAsync(cancellationToken);
        if (Fatal is not null || Problem is not null || step < 0 || step >= Steps.Count || Steps[step].Instance is not { } instance)
        {
            return Page();
        }
        var callback = $"{Request.Scheme}://{Request.Host}{Request.PathBase}{CallbackPath}";
        var (started, error) = await flows.InitAsync(User.UserId(), instance.Id, callback, [.. Steps[step].Scopes], cancellationToken);
        if (started is null)
        {
            Notice = $"Connecting {Steps[step].Name} could not start: {error!.Message}";
            return Redirect(WizardUrl());
        }
        TempData[ResumeKey] = $"{started.State}|{WizardUrl()}";
        return Redirect(started.AuthUrl);
    }

    /// <summary>Where the provider sends the user back: store the credential, then show the wizard again.</summary>
    public async Task<IActionResult> OnGetCallbackAsync(string? code, string? error, CancellationToken cancellationToken)
    {
        // Here "state" is the provider flow's, not the app's.
        var flowState = State;
        if (TempData[ResumeKey] is not string resume || resume.Split('|', 2) is not [var expected, var wizardUrl] || expected != flowState
            || !wizardUrl.StartsWith(Path + "?", StringComparison.Ordinal))
        {
            return RedirectToPage("/Broker/Pages/Connections");
        }
        var (_, problem) = await flows.CompleteRedirectAsync(User.UserId(), code, flowState, error, cancellationToken);
        Notice = problem ?? "Connected.";
        return Redirect(wizardUrl);
    }

    /// <summary>Back to the app: success only when every requested provider is connected.</summary>
    public async Task<IActionResult> OnPostFinishAsync(CancellationToken cancellationToken)
    {
        await LoadAsync(cancellationToken);
        if (Fatal is not null)
        {
            return Page();
        }
        return Redirect(QueryHelpers.AddQueryString(RedirectUri!, new Dictionary<string, string?>
        {
            ["success"] = AllDone && Problem is null ? "true" : "false",
            ["state"] = State,
        }));
    }

    public string WizardUrl() => QueryHelpers.AddQueryString(Path, new Dictionary<string, string?>
    {
        ["client_id"] = ClientId, ["providers"] = ProvidersParameter, ["redirect_uri"] = RedirectUri, ["state"] = State,
    });

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        var app = string.IsNullOrEmpty(ClientId) ? null : await apps.FindReturnAddressesAsync(ClientId, cancellationToken);
        if (app is null || !app.Enabled)
        {
            Fatal = "The app that sent you here is not known to Latchkey, or it is disabled.";
            return;
        }
        AppName = app.Name;
        if (string.IsNullOrEmpty(RedirectUri) || !app.RedirectUris.Contains(RedirectUri, StringComparer.Ordinal))
        {
            Fatal = $"{AppName} asked to send you back to an address it has not registered, so Latchkey will not send you there.";
            return;
        }
        var requested = Parse(ProvidersParameter);
        if (requested is null)
        {
            Problem = $"{AppName} sent a list of services Latchkey cannot read. Return to the app and try again.";
            return;
        }

        var visible = await providers.ListVisibleAsync(User.UserId(), cancellationToken);
        var owned = await credentials.ListAsync(User.UserId(), cancellationToken);
        var steps = new List<WizardStep>();
        foreach (var (item, index) in requested.Select((item, index) => (item, index)))
        {
            var instance = visible.FirstOrDefault(p => p.CatalogKey == item.Provider) ?? visible.FirstOrDefault(p => p.Id == item.Provider);
            var scopes = item.Scopes is { Length: > 0 } ? item.Scopes : instance?.Definition.DefaultScopes ?? [];
            var credential = instance is null ? null : owned.FirstOrDefault(c =>
                c.ProviderInstanceId == instance.Id && c.Status == CredentialStatus.Active &&
                scopes.All(s => c.Scopes.Split(' ').Contains(s, StringComparer.Ordinal)));
            steps.Add(new WizardStep(index, item.Provider, instance?.Name ?? item.Provider, scopes, instance, credential));
        }
        Steps = steps;
        // The wizard's forms lead on to the providers and, at the end, back to the app (checked above).
        var policy = ContentSecurityPolicy.For(HttpContext).AllowFormTarget(RedirectUri);
        foreach (var step in steps)
        {
            policy.AllowFormTarget(step.Instance?.Definition.AuthorizeUrl);
        }
        if (steps.FirstOrDefault(s => s.Instance is null) is { } missing)
        {
            Problem = $"{AppName} needs {missing.ProviderKey}, which is not set up on this Latchkey. Return to the app; an administrator can add it.";
        }
    }

    /// <summary>base64 (standard or URL-safe) of a JSON array like <c>[{"provider":"github","scopes":["repo"]}]</c>; null when unreadable.</summary>
    private static List<RequestedProvider>? Parse(string? parameter)
    {
        if (string.IsNullOrWhiteSpace(parameter) || parameter.Length > 8192)
        {
            return null;
        }
        try
        {
            var text = parameter.Trim().Replace('-', '+').Replace('_', '/');
            text = text.PadRight(text.Length + ((4 - (text.Length % 4)) % 4), '=');
            var items = JsonSerializer.Deserialize<List<RequestedProvider>>(Encoding.UTF8.GetString(Convert.FromBase64String(text)), ProviderJson);
            return items is { Count: > 0 and <= 20 } && items.All(i => !string.IsNullOrWhiteSpace(i.Provider) && (i.Scopes ?? []).All(s => !string.IsNullOrWhiteSpace(s)))
                ? items
                : null;
        }
        catch (Exception exception) when (exception is FormatException or JsonException)
        {
            return null;
        }
    }

    private static readonly JsonSerializerOptions ProviderJson = new() { PropertyNameCaseInsensitive = true };
}

using Latchkey.Common;
using Latchkey.Features.Scopes;
using Latchkey.Features.Site;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Latchkey.Features.ApiKeys.Pages;

/// <summary>The user's API keys: create one with scopes (its secret shown once), see them, revoke them.</summary>
[Authorize]
public sealed class ApiKeysModel(ApiKeyService keys, ScopeCatalog catalog, TimeProvider time) : PageModel
{
    private static readonly Dictionary<string, string> FormFields = new()
    {
        ["name"] = "Input.Name", ["scopes"] = "Input.Scopes", ["expires_at"] = "Input.ExpiresOn",
    };

    [BindProperty]
    public NewApiKeyInput Input { get; set; } = new();

    public IReadOnlyList<ApiKey> Keys { get; private set; } = [];

    public IReadOnlyList<ScopeDefinition> Scopes => catalog.All;

    /// <summary>The key just created: the only time its secret is on a page.</summary>
    public ApiKeyService.Created? Created { get; private set; }

    public string? Notice { get; private set; }

    public DateTimeOffset Now { get; } = time.GetUtcNow();

    public DateOnly Today => DateOnly.FromDateTime(Now.UtcDateTime);

    public async Task OnGetAsync(CancellationToken cancellationToken) => await LoadAsync(cancellationToken);

    public async Task<IActionResult> OnPostCreateAsync(CancellationToken cancellationToken)
    {
        DateTimeOffset? expiresAt = Input.ExpiresOn is { } day ? new DateTimeOffset(day.ToDateTime(TimeOnly.MaxValue), TimeSpan.Zero) : null;
        var (created, errors) = await keys.CreateAsync(User.UserId(), Input.Name, Input.Scopes, expiresAt, cancellationToken);
        ModelState.AddErrors(errors, FormFields);
        if (created is not null)
        {
            Created = created;
            Input = new();
            ModelState.Clear();
        }
        else
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
        }
        await LoadAsync(cancellationToken);
        return Page();
    }

    public async Task<IActionResult> OnPostRevokeAsync(string id, CancellationToken cancellationToken)
    {
        var key = await keys.FindAsync(User.UserId(), id, cancellationToken);
        if (key is null || !await keys.RevokeAsync(User.UserId(), id, cancellationToken))
        {
            Notice = "That key was already revoked or does not exist.";
        }
        else
        {
            Notice = $"Revoked “{key.Name}”. Requests that use it are refused from now on.";
        }
        await LoadAsync(cancellationToken);
        return Page();
    }

    private async Task LoadAsync(CancellationToken cancellationToken) =>
        Keys = await keys.ListAsync(User.UserId(), cancellationToken);
}

public sealed class NewApiKeyInput
{
    public string? Name { get; set; }

    public List<string> Scopes { get; set; } = [];

    public DateOnly? ExpiresOn { get; set; }
}

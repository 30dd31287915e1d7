using Latchkey.Common;
using Latchkey.Features.AuthorizationServer.Apps;
using Latchkey.Features.AuthorizationServer.Grants;
using Latchkey.Features.Scopes;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Latchkey.Features.AuthorizationServer.Pages;

/// <summary>The apps the user let in: what each may do, when it was last used, and revoking it.</summary>
[Authorize]
public sealed class AuthorizedAppsModel(UserGrants grants, ScopeCatalog catalog) : PageModel
{
    public IReadOnlyList<AuthorizedApp> Apps { get; private set; } = [];

    public string? Notice { get; private set; }

    public string Describe(string scope) => catalog.Describe(scope);

    public async Task OnGetAsync(CancellationToken cancellationToken) => await LoadAsync(cancellationToken);

    public async Task<IActionResult> OnPostRevokeAsync(string clientId, CancellationToken cancellationToken)
    {
        var name = (await grants.ListAsync(User.UserId(), cancellationToken)).FirstOrDefault(a => a.ClientId == clientId)?.Name is { } stored
            ? DisplayedText.ForDisplay(stored)
            : null;
        Notice = name is not null && await grants.RevokeAsync(User.UserId(), clientId, cancellationToken)
            ? $"{name} can no longer access your account: its tokens stopped working. It has to ask you again."
            : "That app has no access to revoke.";
        await LoadAsync(cancellationToken);
        return Page();
    }

    // Names stored before hidden characters were refused may still have them: they are not shown.
    private async Task LoadAsync(CancellationToken cancellationToken) =>
        Apps = (await grants.ListAsync(User.UserId(), cancellationToken)).Select(a => a with { Name = DisplayedText.ForDisplay(a.Name) }).ToList();
}

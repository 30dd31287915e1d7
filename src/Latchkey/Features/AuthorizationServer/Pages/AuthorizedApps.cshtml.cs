using Latchkey.Common;
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

    public async Task OnGetAsync(CancellationToken cancellationToken) =>
        Apps = await grants.ListAsync(User.UserId(), cancellationToken);

    public async Task<IActionResult> OnPostRevokeAsync(string clientId, CancellationToken cancellationToken)
    {
        var name = (await grants.ListAsync(User.UserId(), cancellationToken)).FirstOrDefault(a => a.ClientId == clientId)?.Name;
        Notice = name is not null && await grants.RevokeAsync(User.UserId(), clientId, cancellationToken)
            ? $"{name} can no longer access your account: its tokens stopped working. It has to ask you again."
            : "That app has no access to revoke.";
        Apps = await grants.ListAsync(User.UserId(), cancellationToken);
        return Page();
    }
}

using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Latchkey.Features.Administration.Pages;

/// <summary>Accounts, searched by e-mail address or name.</summary>
public sealed class AdminUsersModel(AccountAdministration administration) : PageModel
{
    public const int PageSize = 100;

    [BindProperty(SupportsGet = true, Name = "q")]
    public string? Search { get; set; }

    public IReadOnlyList<UserSummary> Users { get; private set; } = [];

    public async Task OnGetAsync(CancellationToken cancellationToken) =>
        Users = await administration.SearchAsync(Search, PageSize + 1, cancellationToken);
}

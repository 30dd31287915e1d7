using Latchkey.Common;
using Latchkey.Features.AccountData;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Latchkey.Features.Administration.Pages;

/// <summary>What deleting an account removes, and the deletion itself once its e-mail address is typed to confirm.</summary>
public sealed class AdminDeleteUserModel(AccountAdministration administration, AccountDeletion deletion) : PageModel
{
    public UserSummary Account { get; private set; } = null!;

    public AccountDeletionPlan Plan { get; private set; } = null!;

    [BindProperty]
    public string? ConfirmEmail { get; set; }

    public async Task<IActionResult> OnGetAsync(string id, CancellationToken cancellationToken) =>
        await LoadAsync(id, cancellationToken) ? Page() : NotFound();

    public async Task<IActionResult> OnPostAsync(string id, CancellationToken cancellationToken)
    {
        var user = await administration.FindByIdAsync(id);
        if (user is null)
        {
            return NotFound();
        }
        if (user.Id == User.UserId())
        {
            ModelState.AddModelError("", "You cannot delete your own account here; another administrator or the CLI can.");
        }
        else if (!string.Equals(ConfirmEmail?.Trim(), user.Email, StringComparison.OrdinalIgnoreCase))
        {
            ModelState.AddModelError(nameof(ConfirmEmail), $"Type {user.Email} to confirm; nothing was deleted.");
        }
        if (!ModelState.IsValid)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
            await LoadAsync(id, cancellationToken);
            return Page();
        }
        var removed = await deletion.DeleteAsync(user, AdminActor.Of(User), cancellationToken);
        TempData[AdminPaths.NoticeKey] = $"{user.Email} is deleted, with {removed.ApiKeys} API key(s), {removed.OwnedApps} app(s), " +
                                          $"{removed.Credentials} credential(s), {removed.McpServers} MCP server(s) and {removed.Webhooks} webhook(s).";
        return Redirect(AdminPaths.Users);
    }

    private async Task<bool> LoadAsync(string id, CancellationToken cancellationToken)
    {
        var user = await administration.FindByIdAsync(id);
        if (user is null)
        {
            return false;
        }
        Account = (await administration.DetailsAsync(user, cancellationToken)).User;
        Plan = await deletion.PlanAsync(user.Id, cancellationToken);
        return true;
    }
}

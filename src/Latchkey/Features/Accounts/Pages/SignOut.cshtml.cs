using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Latchkey.Features.Accounts.Pages;

/// <summary>Sign-out is a POST with an antiforgery token, so a link on another site cannot sign people out.</summary>
public sealed class SignOutModel(SignInManager<LatchkeyUser> signInManager) : PageModel
{
    public void OnGet()
    {
    }

    public async Task<IActionResult> OnPostAsync()
    {
        await signInManager.SignOutAsync();
        return RedirectToPage();
    }
}

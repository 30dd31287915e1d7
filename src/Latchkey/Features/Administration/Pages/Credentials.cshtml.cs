using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Latchkey.Features.Administration.Pages;

/// <summary>Credentials by provider configuration: how many, and how healthy. Never a token, secret or account's value.</summary>
public sealed class AdminCredentialsModel(AdminOverview overview) : PageModel
{
    public IReadOnlyList<ProviderHealthRow> Providers { get; private set; } = [];

    public async Task OnGetAsync(CancellationToken cancellationToken) =>
        Providers = await overview.CredentialHealthAsync(cancellationToken);
}

using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Latchkey.Features.Administration.Pages;

/// <summary>The deployment at a glance, with a way into each admin section.</summary>
public sealed class AdminIndexModel(AdminOverview overview) : PageModel
{
    public DeploymentCounts Counts { get; private set; } = null!;

    public async Task OnGetAsync(CancellationToken cancellationToken) =>
        Counts = await overview.CountsAsync(cancellationToken);
}

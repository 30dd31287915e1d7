using Latchkey.Features.Accounts;
using Microsoft.AspNetCore.Identity;

namespace Latchkey.Features.Administration;

/// <summary>
/// The operators' side: <see cref="AccountAdministration"/> (shared by the CLI and the pages) and the
/// admin pages under <c>/admin</c>, open to the <c>admin</c> role only. Deleting an account is
/// <see cref="AccountData.AccountDeletion"/>'s, shared with the account's own page.
/// </summary>
public static class AdministrationSetup
{
    public const string AdminPolicy = "admin";
    public const string PathPrefix = "/admin";

    public static WebApplicationBuilder AddAdministration(this WebApplicationBuilder builder)
    {
        builder.Services.AddScoped<AccountAdministration>();
        builder.Services.AddScoped<AdminOverview>();
        builder.Services.AddAuthorizationBuilder().AddPolicy(AdminPolicy, policy => policy
            .AddAuthenticationSchemes(IdentityConstants.ApplicationScheme)
            .RequireAuthenticatedUser()
            .RequireRole(AccountRoles.Admin));
        builder.Services.Configure<Microsoft.AspNetCore.Mvc.RazorPages.RazorPagesOptions>(options =>
            options.Conventions.AuthorizeFolder("/Administration/Pages", AdminPolicy));
        return builder;
    }
}

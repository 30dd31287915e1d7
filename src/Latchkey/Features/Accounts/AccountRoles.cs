namespace Latchkey.Features.Accounts;

/// <summary>Roles an account can hold (ASP.NET Core Identity roles), granted with the CLI.</summary>
public static class AccountRoles
{
    /// <summary>Operators of the deployment: <c>latchkey users grant-admin</c>.</summary>
    public const string Admin = "admin";
}

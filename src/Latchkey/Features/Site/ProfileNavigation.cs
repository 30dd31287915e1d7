namespace Latchkey.Features.Site;

/// <summary>The signed-in user's pages, in the order the header lists them.</summary>
public static class ProfileNavigation
{
    public const string OAuthApps = "/profile/oauth-apps";
    public const string ApiKeys = "/profile/api-keys";
    public const string Connections = "/profile/connections";
    public const string AuthorizedApps = "/profile/authorized-apps";
    public const string SecurityEvents = "/profile/security-events";
    public const string Approvals = "/profile/approvals";
    public const string Security = "/profile/security";
    public const string Account = "/profile/account";

    /// <summary>The admin pages, listed for accounts with the admin role.</summary>
    public const string Admin = "/admin";

    public static readonly IReadOnlyList<(string Href, string Label)> Links =
    [
        (AuthorizedApps, "Authorized apps"),
        (ApiKeys, "API keys"),
        (Connections, "Connections"),
        (Approvals, "Approvals"),
        (OAuthApps, "Your OAuth apps"),
        (Security, "Sign-in and security"),
        (SecurityEvents, "Security log"),
        (Account, "Your account"),
    ];
}

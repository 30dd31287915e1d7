namespace Latchkey.Features.Administration.Pages;

/// <summary>The admin pages' addresses, in the order their navigation lists them.</summary>
public static class AdminPaths
{
    public const string Overview = AdministrationSetup.PathPrefix;
    public const string Users = "/admin/users";
    public const string Apps = "/admin/apps";
    public const string Credentials = "/admin/credentials";
    public const string SecurityLog = "/admin/security-log";
    public const string Settings = "/admin/settings";

    /// <summary>The TempData entry that carries "done" from an action to the page it redirects to.</summary>
    public const string NoticeKey = "AdminNotice";

    public static readonly IReadOnlyList<(string Href, string Label)> Sections =
    [
        (Overview, "Overview"),
        (Users, "Users"),
        (Apps, "Apps"),
        (Credentials, "Credentials"),
        (SecurityLog, "Security log"),
        (Settings, "Settings"),
    ];

    public static string User(string id) => $"{Users}/{Uri.EscapeDataString(id)}";

    public static string DeleteUser(string id) => $"{User(id)}/delete";
}

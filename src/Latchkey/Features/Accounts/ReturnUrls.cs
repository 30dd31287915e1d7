using Microsoft.AspNetCore.Mvc;

namespace Latchkey.Features.Accounts;

/// <summary>Return URLs after sign-in are local paths only, never another site (open-redirect guard).</summary>
internal static class ReturnUrls
{
    public static string SafeLocal(IUrlHelper url, string? returnUrl) =>
        !string.IsNullOrEmpty(returnUrl) && url.IsLocalUrl(returnUrl) ? returnUrl : "/";

    public static string AppendTo(string path, string? returnUrl) =>
        string.IsNullOrEmpty(returnUrl) ? path : $"{path}?returnUrl={Uri.EscapeDataString(returnUrl)}";
}

using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Deque.AxeCore.Commons;
using Deque.AxeCore.Playwright;
using Microsoft.Playwright;

namespace Latchkey.Tests.Infrastructure;

/// <summary>
/// Debian's Chromium (<c>/usr/bin/chromium</c>), headless, driven by Playwright; one browser for
/// all page tests, a fresh context (cookies, storage) per test. No browser is ever downloaded.
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    public const string ChromiumPath = "/usr/bin/chromium";

    public static readonly ViewportSize Desktop = new() { Width = 1280, Height = 800 };
    public static readonly ViewportSize Phone = new() { Width = 390, Height = 844 };

    private static readonly ConditionalWeakTable<IBrowserContext, ConcurrentQueue<string>> PolicyViolations = new();

    private IPlaywright? _playwright;

    public IBrowser Browser { get; private set; } = null!;

    /// <summary>Where screenshots go: <c>test-output/screenshots</c> at the repository root.</summary>
    public static string ScreenshotDirectory { get; } = Path.Combine(RepositoryFiles.Root, "test-output", "screenshots");

    public async Task InitializeAsync()
    {
        if (!File.Exists(ChromiumPath))
        {
            throw new InvalidOperationException(
                $"The page tests need Debian's Chromium at {ChromiumPath}: sudo apt-get install chromium (.ci/run installs it).");
        }
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking", "--no-first-run"],
        });
        Directory.CreateDirectory(ScreenshotDirectory);
    }

    /// <summary>
    /// A fresh browser context on <paramref name="server"/>. <paramref name="host"/> names the server
    /// otherwise than by its address: passkeys need a domain (WebAuthn refuses an IP address), and
    /// <c>localhost</c> is one that reaches the loopback server.
    /// </summary>
    public async Task<IPage> NewPageAsync(LatchkeyServerFixture server, ViewportSize? viewport = null, string? host = null)
    {
        var baseAddress = host is null ? server.BaseAddress : new UriBuilder(server.BaseAddress) { Host = host }.Uri;
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = baseAddress.AbsoluteUri.TrimEnd('/'),
            ViewportSize = viewport ?? Desktop,
            Locale = "en-GB",
        });
        context.SetDefaultTimeout(15_000);
        // Chromium reports every Content-Security-Policy violation on the console, on every page the context visits.
        var violations = PolicyViolations.GetOrCreateValue(context);
        context.Console += (_, message) =>
        {
            if (message.Text.Contains("Content Security Policy", StringComparison.Ordinal))
            {
                violations.Enqueue($"{message.Location}: {message.Text}");
            }
        };
        return await context.NewPageAsync();
    }

    /// <summary>The Content-Security-Policy violations Chromium reported in this page's context so far.</summary>
    public static IReadOnlyList<string> PolicyViolationsOf(IPage page) =>
        PolicyViolations.TryGetValue(page.Context, out var violations) ? [.. violations] : [];

    /// <summary>No page this context visited broke its Content-Security-Policy.</summary>
    public static void AssertNoPolicyViolations(IPage page, string what)
    {
        var violations = PolicyViolationsOf(page);
        Assert.True(violations.Count == 0, $"{what}: Content-Security-Policy violations:\n{string.Join("\n", violations)}");
    }

    /// <summary>A screenshot of the whole page at desktop and phone widths, an axe-core check at both, and no CSP violation.</summary>
    public static async Task CaptureAndCheckAsync(IPage page, string name)
    {
        AssertNoPolicyViolations(page, name);
        var original = page.ViewportSize;
        foreach (var (label, size) in new[] { ("desktop", Desktop), ("phone", Phone) })
        {
            await page.SetViewportSizeAsync(size.Width, size.Height);
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ScreenshotDirectory, $"{name}-{label}.png"), FullPage = true });
            await AssertAccessibleAsync(page, $"{name} ({label})");
        }
        if (original is not null)
        {
            await page.SetViewportSizeAsync(original.Width, original.Height);
        }
    }

    /// <summary>axe-core's WCAG 2.1 A and AA rules (labels, contrast, landmarks, names) find nothing.</summary>
    public static async Task AssertAccessibleAsync(IPage page, string what)
    {
        var result = await page.RunAxe(new AxeRunOptions
        {
            RunOnly = new RunOnlyOptions { Type = "tag", Values = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
        });
        var problems = result.Violations.Select(v =>
            $"{v.Id} ({v.Impact}): {v.Help} — {string.Join("; ", v.Nodes.Select(n => n.Target?.ToString()))}");
        Assert.True(result.Violations.Length == 0, $"{what} has accessibility problems:\n{string.Join("\n", problems)}");
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }
        _playwright?.Dispose();
    }
}

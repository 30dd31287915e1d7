using System.Diagnostics;

namespace Latchkey.Tests.Infrastructure;

/// <summary>Waits for what another node, process or background job makes true, failing with what was awaited.</summary>
public static class Eventually
{
    public static Task TrueAsync(Func<bool> condition, TimeSpan timeout, string what) =>
        TrueAsync(() => Task.FromResult(condition()), timeout, what);

    public static async Task TrueAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(clock.Elapsed < timeout, $"Timed out after {timeout.TotalSeconds:F0} s waiting for: {what}");
            await Task.Delay(50);
        }
    }
}

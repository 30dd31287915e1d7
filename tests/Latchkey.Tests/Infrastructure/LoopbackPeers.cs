namespace Latchkey.Tests.Infrastructure;

/// <summary>The two loopback servers a whole-system test talks to through Latchkey: an OAuth provider and an upstream MCP server.</summary>
public sealed class LoopbackPeers : IAsyncDisposable
{
    private LoopbackPeers(TestOAuthProvider provider, TestMcpUpstream upstream)
    {
        Provider = provider;
        Upstream = upstream;
    }

    public TestOAuthProvider Provider { get; }

    public TestMcpUpstream Upstream { get; }

    public static async Task<LoopbackPeers> StartAsync() => new(await TestOAuthProvider.StartAsync(), await TestMcpUpstream.StartAsync());

    public async ValueTask DisposeAsync()
    {
        await Upstream.DisposeAsync();
        await Provider.DisposeAsync();
    }
}

using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;

namespace Latchkey.Tests.Infrastructure;

/// <summary>
/// A real OpenID Connect provider on loopback for "sign in with an existing identity": Node.js
/// oidc-provider (tests/oidc-peer), started for a Latchkey whose port is chosen first, since each
/// must name the other's address. Its development sign-in form takes any login; the login is the
/// person's e-mail address (verified, unless it starts with "unverified").
/// </summary>
public sealed class OidcPeer : IAsyncDisposable
{
    public const string ProviderName = "corp";
    public const string DisplayName = "Corp SSO";
    public const string ClientSecret = "oidc-peer-client-secret-0123456789";

    private readonly Process _process;

    private OidcPeer(Process process, Uri issuer)
    {
        _process = process;
        Issuer = issuer;
    }

    public Uri Issuer { get; }

    public static async Task<OidcPeer> StartAsync(int latchkeyPort)
    {
        var folder = Path.Combine(RepositoryFiles.Root, "tests", "oidc-peer");
        if (!Directory.Exists(Path.Combine(folder, "node_modules", "oidc-provider")))
        {
            throw new InvalidOperationException($"The OpenID Connect peer is not installed: run `npm ci` in {folder} (./test.sh does).");
        }
        var port = FreePorts.Next();
        var start = new ProcessStartInfo("node", [Path.Combine(folder, "server.mjs"), port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            $"http://127.0.0.1:{latchkeyPort}/account/external/callback", ClientSecret])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = folder,
        };
        var process = Process.Start(start) ?? throw new InvalidOperationException("node did not start.");
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, line) =>
        {
            if (line.Data?.StartsWith("listening", StringComparison.Ordinal) == true)
            {
                listening.TrySetResult();
            }
        };
        process.ErrorDataReceived += (_, line) =>
        {
            if (line.Data is not null)
            {
                Console.Error.WriteLine($"[oidc-peer] {line.Data}");
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (await Task.WhenAny(listening.Task, Task.Delay(TimeSpan.FromSeconds(20))) != listening.Task)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException("The OpenID Connect peer did not start within 20 seconds.");
        }
        return new OidcPeer(process, new Uri($"http://127.0.0.1:{port}"));
    }

    /// <summary>Latchkey's settings for this provider, on a Latchkey that listens on <paramref name="latchkeyPort"/>.</summary>
    public void Configure(WebApplicationBuilder builder, int latchkeyPort)
    {
        builder.Configuration[$"ExternalSignIn:Providers:{ProviderName}:Issuer"] = Issuer.AbsoluteUri;
        builder.Configuration[$"ExternalSignIn:Providers:{ProviderName}:DisplayName"] = DisplayName;
        builder.Configuration[$"ExternalSignIn:Providers:{ProviderName}:ClientId"] = "latchkey";
        builder.Configuration[$"ExternalSignIn:Providers:{ProviderName}:ClientSecret"] = ClientSecret;
        builder.WebHost.UseUrls($"http://127.0.0.1:{latchkeyPort}");
    }

    public ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }
        _process.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>A Latchkey on SQLite whose sign-in page offers the loopback OpenID Connect peer.</summary>
public sealed class SqliteServerWithOidcPeer : SqliteServer
{
    private readonly int _port = FreePorts.Next();

    public OidcPeer Peer { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        Peer = await OidcPeer.StartAsync(_port);
        await base.InitializeAsync();
    }

    protected override void ConfigureServer(WebApplicationBuilder builder) => Peer.Configure(builder, _port);

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await Peer.DisposeAsync();
    }
}

/// <summary>The same on PostgreSQL.</summary>
public sealed class PostgresServerWithOidcPeer : PostgresServer
{
    private readonly int _port = FreePorts.Next();

    public OidcPeer Peer { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        Peer = await OidcPeer.StartAsync(_port);
        await base.InitializeAsync();
    }

    protected override void ConfigureServer(WebApplicationBuilder builder) => Peer.Configure(builder, _port);

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await Peer.DisposeAsync();
    }
}

using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Latchkey.Common;
using Latchkey.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using static Latchkey.Tests.Infrastructure.TestBroker;

namespace Latchkey.Tests.Common;

/// <summary>
/// The SSRF guard: every special-purpose block of the IANA registries is refused (an address
/// inside each, and one just outside that is not, or that lands in the enclosing block), wrapped
/// IPv4 addresses are judged by what they wrap, and a connection goes to the addresses that were
/// checked for it, however the name resolves before or after.
/// </summary>
public sealed class OutboundAddressGuardTests
{
    /// <summary>
    /// The address, and the block its refusal names (null: allowed). Blocks inside a larger one
    /// have their "just outside" address in the larger block; IPv6 blocks outside 2000::/3 have
    /// theirs in the reserved space around them, which is refused as such.
    /// </summary>
    [Theory]
    // IPv4
    [InlineData("0.0.0.1", "0.0.0.0/8")]
    [InlineData("0.255.255.255", "0.0.0.0/8")]
    [InlineData("1.0.0.0", null)]
    [InlineData("0.0.0.0", "0.0.0.0/32")]
    [InlineData("10.0.0.1", "10.0.0.0/8")]
    [InlineData("10.255.255.255", "10.0.0.0/8")]
    [InlineData("9.255.255.255", null)]
    [InlineData("11.0.0.0", null)]
    [InlineData("100.64.0.0", "100.64.0.0/10")]
    [InlineData("100.127.255.255", "100.64.0.0/10")]
    [InlineData("100.63.255.255", null)]
    [InlineData("100.128.0.0", null)]
    [InlineData("127.0.0.1", "127.0.0.0/8")]
    [InlineData("127.255.255.255", "127.0.0.0/8")]
    [InlineData("126.255.255.255", null)]
    [InlineData("128.0.0.0", null)]
    [InlineData("169.254.169.254", "169.254.0.0/16")]
    [InlineData("169.253.255.255", null)]
    [InlineData("169.255.0.0", null)]
    [InlineData("172.16.0.0", "172.16.0.0/12")]
    [InlineData("172.31.255.255", "172.16.0.0/12")]
    [InlineData("172.15.255.255", null)]
    [InlineData("172.32.0.0", null)]
    [InlineData("192.0.0.255", "192.0.0.0/24")]
    [InlineData("191.255.255.255", null)]
    [InlineData("192.0.1.0", null)]
    [InlineData("192.0.0.7", "192.0.0.0/29")]
    [InlineData("192.0.0.8", "192.0.0.8/32")]
    [InlineData("192.0.0.9", "192.0.0.9/32")]
    [InlineData("192.0.0.10", "192.0.0.10/32")]
    [InlineData("192.0.0.11", "192.0.0.0/24")]
    [InlineData("192.0.0.170", "192.0.0.170/31")]
    [InlineData("192.0.0.171", "192.0.0.170/31")]
    [InlineData("192.0.0.172", "192.0.0.0/24")]
    [InlineData("192.0.2.1", "192.0.2.0/24")]
    [InlineData("192.0.3.0", null)]
    [InlineData("192.31.196.1", "192.31.196.0/24")]
    [InlineData("192.31.195.255", null)]
    [InlineData("192.31.197.0", null)]
    [InlineData("192.52.193.1", "192.52.193.0/24")]
    [InlineData("192.52.192.255", null)]
    [InlineData("192.52.194.0", null)]
    [InlineData("192.88.99.1", "192.88.99.0/24")]
    [InlineData("192.88.98.255", null)]
    [InlineData("192.88.100.0", null)]
    [InlineData("192.168.1.1", "192.168.0.0/16")]
    [InlineData("192.167.255.255", null)]
    [InlineData("192.169.0.0", null)]
    [InlineData("192.175.48.1", "192.175.48.0/24")]
    [InlineData("192.175.47.255", null)]
    [InlineData("192.175.49.0", null)]
    [InlineData("198.18.0.1", "198.18.0.0/15")]
    [InlineData("198.19.255.255", "198.18.0.0/15")]
    [InlineData("198.17.255.255", null)]
    [InlineData("198.20.0.0", null)]
    [InlineData("198.51.100.1", "198.51.100.0/24")]
    [InlineData("198.51.99.255", null)]
    [InlineData("198.51.101.0", null)]
    [InlineData("203.0.113.1", "203.0.113.0/24")]
    [InlineData("203.0.112.255", null)]
    [InlineData("203.0.114.0", null)]
    [InlineData("224.0.0.1", "224.0.0.0/4")]
    [InlineData("239.255.255.255", "224.0.0.0/4")]
    [InlineData("223.255.255.255", null)]
    [InlineData("240.0.0.1", "240.0.0.0/4")]
    [InlineData("255.255.255.254", "240.0.0.0/4")]
    [InlineData("255.255.255.255", "255.255.255.255/32")]
    [InlineData("8.8.8.8", null)]
    [InlineData("93.184.215.14", null)]
    // IPv6
    [InlineData("::", "::/128")]
    [InlineData("::1", "::1/128")]
    [InlineData("::2", "::/96")]
    [InlineData("::7f00:1", "::/96")]
    [InlineData("::808:808", "::/96")]
    [InlineData("::1:0:0", "2000::/3")]
    [InlineData("::ffff:0:a00:1", "::ffff:0:0:0/96")]
    [InlineData("::ffff:0:808:808", "::ffff:0:0:0/96")]
    [InlineData("::1:0:0:0", "2000::/3")]
    [InlineData("64:ff9b:1::808:808", "64:ff9b:1::/48")]
    [InlineData("64:ff9b:2::", "2000::/3")]
    [InlineData("64:ff9b::1:0:0", "2000::/3")]
    [InlineData("100::1", "100::/64")]
    [InlineData("100:0:0:1::1", "100:0:0:1::/64")]
    [InlineData("100:0:0:2::", "2000::/3")]
    [InlineData("2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::/32")]
    [InlineData("2001:100::", "2001::/23")]
    [InlineData("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "2001::/23")]
    [InlineData("2001:200::", null)]
    [InlineData("2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", null)]
    [InlineData("2001:1::1", "2001:1::1/128")]
    [InlineData("2001:1::2", "2001:1::2/128")]
    [InlineData("2001:1::3", "2001:1::3/128")]
    [InlineData("2001:1::4", "2001::/23")]
    [InlineData("2001:2::1", "2001:2::/48")]
    [InlineData("2001:2:1::", "2001::/23")]
    [InlineData("2001:3::1", "2001:3::/32")]
    [InlineData("2001:4:112::1", "2001:4:112::/48")]
    [InlineData("2001:4:113::", "2001::/23")]
    [InlineData("2001:10::1", "2001:10::/28")]
    [InlineData("2001:20::1", "2001:20::/28")]
    [InlineData("2001:30::1", "2001:30::/28")]
    [InlineData("2001:40::", "2001::/23")]
    [InlineData("2001:db8::1", "2001:db8::/32")]
    [InlineData("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", null)]
    [InlineData("2001:db9::", null)]
    [InlineData("2620:4f:8000::1", "2620:4f:8000::/48")]
    [InlineData("2620:4f:7fff:ffff:ffff:ffff:ffff:ffff", null)]
    [InlineData("2620:4f:8001::", null)]
    [InlineData("3fff::1", "3fff::/20")]
    [InlineData("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "3fff::/20")]
    [InlineData("3fff:1000::", null)]
    [InlineData("5f00::1", "5f00::/16")]
    [InlineData("5f01::", "2000::/3")]
    [InlineData("4000::1", "2000::/3")]
    [InlineData("fc00::1", "fc00::/7")]
    [InlineData("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fc00::/7")]
    [InlineData("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2000::/3")]
    [InlineData("fe00::", "2000::/3")]
    [InlineData("fe80::1", "fe80::/10")]
    [InlineData("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe80::/10")]
    [InlineData("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2000::/3")]
    [InlineData("fec0::1", "fec0::/10")]
    [InlineData("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fec0::/10")]
    [InlineData("ff02::1", "ff00::/8")]
    [InlineData("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ff00::/8")]
    [InlineData("2606:4700:4700::1111", null)]
    [InlineData("2001:4860:4860::8888", null)]
    public void Each_special_purpose_block_is_refused_and_its_neighbours_are_not(string address, string? block)
    {
        var refusal = OutboundAddressGuard.Refusal(IPAddress.Parse(address));

        if (block is null)
        {
            Assert.Null(refusal);
        }
        else
        {
            Assert.NotNull(refusal);
            Assert.Contains(IPNetwork.Parse(block).ToString(), refusal);
        }
    }

    /// <summary>IPv4-mapped, NAT64 and 6to4 addresses are as good as the IPv4 address they carry.</summary>
    [Theory]
    [InlineData("::ffff:10.0.0.1", "10.0.0.0/8", "::ffff:0:0/96")]
    [InlineData("::ffff:127.0.0.1", "127.0.0.0/8", "::ffff:0:0/96")]
    [InlineData("::ffff:169.254.169.254", "169.254.0.0/16", "::ffff:0:0/96")]
    [InlineData("::ffff:8.8.8.8", null, null)]
    [InlineData("64:ff9b::10.0.0.1", "10.0.0.0/8", "64:ff9b::/96")]
    [InlineData("64:ff9b::127.0.0.1", "127.0.0.0/8", "64:ff9b::/96")]
    [InlineData("64:ff9b::198.18.0.1", "198.18.0.0/15", "64:ff9b::/96")]
    [InlineData("64:ff9b::192.0.0.170", "192.0.0.170/31", "64:ff9b::/96")]
    [InlineData("64:ff9b::8.8.8.8", null, null)]
    [InlineData("64:ff9b::93.184.215.14", null, null)]
    [InlineData("2002:a00:1::", "10.0.0.0/8", "2002::/16")]
    [InlineData("2002:7f00:1::1", "127.0.0.0/8", "2002::/16")]
    [InlineData("2002:c0a8:101:ffff::1", "192.168.0.0/16", "2002::/16")]
    [InlineData("2002:a9fe:a9fe::", "169.254.0.0/16", "2002::/16")]
    [InlineData("2002:808:808::", null, null)]
    [InlineData("2002:808:808:1::1", null, null)]
    [InlineData("2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", null, null)]
    [InlineData("2003::", null, null)]
    public void A_wrapped_ipv4_address_decides_for_its_wrapper(string address, string? inner, string? wrapper)
    {
        var refusal = OutboundAddressGuard.Refusal(IPAddress.Parse(address));

        if (inner is null)
        {
            Assert.Null(refusal);
        }
        else
        {
            Assert.NotNull(refusal);
            Assert.Contains(IPNetwork.Parse(inner).ToString(), refusal);
            Assert.Contains(IPNetwork.Parse(wrapper!).ToString(), refusal);
        }
    }

    /// <summary>System.Uri turns odd IPv4 spellings into dotted quads and IPv6 into its canonical form; each is still refused, without any DNS lookup.</summary>
    [Theory]
    [InlineData("https://2130706433/token")]
    [InlineData("https://0x7f.1/token")]
    [InlineData("https://0177.0.0.1/token")]
    [InlineData("https://127.1/token")]
    [InlineData("https://0/token")]
    [InlineData("https://0x7f000001/token")]
    [InlineData("https://127。0。0。1/token")]
    [InlineData("https://[::ffff:127.0.0.1]/token")]
    [InlineData("https://[0:0:0:0:0:ffff:7f00:1]/token")]
    [InlineData("https://[::127.0.0.1]/token")]
    [InlineData("https://[::1]/token")]
    [InlineData("https://[fe80::1%25eth0]/token")]
    [InlineData("https://[64:ff9b::10.0.0.1]/token")]
    [InlineData("https://[2002:a9fe:a9fe::]/latest/meta-data")]
    [InlineData("https://10.1.2.3/token")]
    [InlineData("https://192.168.0.1/token")]
    [InlineData("https://169.254.169.254/latest/meta-data")]
    [InlineData("https://198.18.0.1/token")]
    public async Task Ip_literal_hosts_in_a_special_block_are_refused_however_they_are_written(string url)
    {
        var guard = new OutboundAddressGuard(NoDns);

        var refusal = await guard.CheckAsync(url, allowPrivateNetworks: false, CancellationToken.None);

        Assert.NotNull(refusal);
        Assert.Contains("which Latchkey does not call", refusal);
    }

    [Theory]
    [InlineData("https://8.8.8.8/token")]
    [InlineData("https://[64:ff9b::8.8.8.8]/token")]
    [InlineData("https://[2606:4700:4700::1111]/token")]
    public async Task Public_ip_literal_hosts_are_allowed(string url) =>
        Assert.Null(await new OutboundAddressGuard(NoDns).CheckAsync(url, allowPrivateNetworks: false, CancellationToken.None));

    [Theory]
    [InlineData("http://example.com/token", "must use https")]
    [InlineData("ftp://example.com/token", "is not an absolute http(s) URL")]
    [InlineData("https://user:pass@example.com/token", "is not an absolute http(s) URL")]
    [InlineData("/token", "is not an absolute http(s) URL")]
    public async Task Plain_http_other_schemes_and_user_info_are_refused(string url, string reason)
    {
        var refusal = await new OutboundAddressGuard(Answers(["93.184.215.14"]).Resolver).CheckAsync(url, allowPrivateNetworks: false, CancellationToken.None);

        Assert.NotNull(refusal);
        Assert.Contains(reason, refusal);
    }

    [Fact]
    public async Task The_guard_can_be_opened_for_loopback_test_providers() =>
        Assert.Null(await new OutboundAddressGuard(NoDns).CheckAsync("http://127.0.0.1:5000/token", allowPrivateNetworks: true, CancellationToken.None));

    [Fact]
    public async Task A_name_is_refused_when_any_of_its_addresses_is_special_purpose_and_the_address_is_not_named()
    {
        var guard = new OutboundAddressGuard(Answers(["93.184.215.14", "10.0.0.7"]).Resolver);

        var refusal = await guard.CheckAsync("https://mixed.example/token", allowPrivateNetworks: false, CancellationToken.None);

        Assert.Equal("'mixed.example' resolves to a private, loopback or other special-purpose address, which Latchkey does not call.", refusal);
    }

    [Fact]
    public async Task A_name_that_resolves_to_nothing_or_fails_to_resolve_is_refused()
    {
        Assert.Contains("cannot be resolved", await new OutboundAddressGuard(Answers([]).Resolver).CheckAsync("https://empty.example/", false, CancellationToken.None));
        Assert.Contains("cannot be resolved", await new OutboundAddressGuard(NoDns).CheckAsync("https://missing.example/", false, CancellationToken.None));
    }

    [Fact]
    public async Task A_long_url_is_echoed_only_as_a_prefix()
    {
        var url = "ftp://" + new string('a', 100_000);

        var refusal = await new OutboundAddressGuard(NoDns).CheckAsync(url, false, CancellationToken.None);

        Assert.True(refusal!.Length < 200, refusal);
    }

    [Fact]
    public async Task A_name_that_rebinds_to_a_private_address_after_the_check_is_refused_at_connect_time()
    {
        // The DNS server answers a public address when the URL is registered, then a private one.
        var answers = Answers(["93.184.215.14"], ["10.0.0.7"]);
        var guard = new OutboundAddressGuard(answers.Resolver);
        Assert.Null(await guard.CheckAsync("https://rebind.example/token", allowPrivateNetworks: false, CancellationToken.None));

        using var client = new HttpClient(guard.CreateHandler(allowPrivateNetworks: false));
        var refused = await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync("https://rebind.example/token"));

        Assert.Contains("Refused to connect to 'rebind.example'", refused.Message);
        Assert.Equal(2, answers.Calls);
    }

    [Fact]
    public async Task A_connection_is_refused_when_any_resolved_address_is_special_purpose()
    {
        var answers = Answers(["93.184.215.14", "127.0.0.1"]);
        using var client = new HttpClient(new OutboundAddressGuard(answers.Resolver).CreateHandler(allowPrivateNetworks: false));

        var refused = await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync("https://half-private.example/"));

        Assert.Contains("special-purpose address", refused.Message);
        Assert.Equal(1, answers.Calls);
    }

    [Theory]
    [InlineData("https://2130706433/")]
    [InlineData("https://[::ffff:127.0.0.1]/")]
    [InlineData("https://[64:ff9b::a9fe:a9fe]/")]
    public async Task A_connection_to_a_special_ip_literal_is_refused_without_dns(string url)
    {
        using var client = new HttpClient(new OutboundAddressGuard(NoDns).CreateHandler(allowPrivateNetworks: false));

        var refused = await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync(url));

        Assert.Contains("special-purpose address", refused.Message);
    }

    [Fact]
    public async Task A_connection_is_made_to_the_addresses_resolved_for_it_once_and_not_to_a_later_answer()
    {
        // The first answer is where the listener is; every later one is a loopback address where
        // nothing listens. A second lookup (to check, then to connect) would connect there and fail.
        // The guard is open here only so that a loopback peer can stand in for a public server:
        // resolution and connection take the same path whether or not the addresses are refused.
        await using var peer = await TestOAuthProvider.StartAsync();
        var port = peer.BaseAddress.Port;
        var answers = Answers(["127.0.0.1"], ["127.0.0.2"]);
        using var client = new HttpClient(new OutboundAddressGuard(answers.Resolver).CreateHandler(allowPrivateNetworks: true));

        for (var connection = 1; connection <= 2; connection++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"http://pinned.example:{port}/authorize") { Headers = { ConnectionClose = true } };
            if (connection == 1)
            {
                // Any answer will do: it came over a connection to the first address.
                using var response = await client.SendAsync(request);
                Assert.Equal(1, answers.Calls);
            }
            else
            {
                // The next connection resolves again, once, and goes where that answer says.
                await Assert.ThrowsAsync<HttpRequestException>(() => client.SendAsync(request));
                Assert.Equal(2, answers.Calls);
            }
        }
    }

    /// <summary>A resolver that fails the lookup, as for an unknown name: IP literals must never reach it.</summary>
    private static readonly HostAddressResolver NoDns = new((_, _) => throw new SocketException((int)SocketError.HostNotFound));

    private static ScriptedAnswers Answers(params string[][] answers) => new(answers);
}

/// <summary>Answers each lookup with the next of its answers (the last one repeated), as a rebinding DNS server would; counts lookups.</summary>
public sealed class ScriptedAnswers(string[][] answers)
{
    private int _calls;

    public int Calls => Volatile.Read(ref _calls);

    public HostAddressResolver Resolver => new((_, _) => Task.FromResult(Next()));

    public IPAddress[] Next()
    {
        var call = Interlocked.Increment(ref _calls) - 1;
        return answers.Length == 0 ? [] : [.. answers[Math.Min(call, answers.Length - 1)].Select(IPAddress.Parse)];
    }
}

/// <summary>The DNS of a server under test: the names a test scripts; any other name does not resolve.</summary>
public sealed class ScriptedDns
{
    private readonly ConcurrentDictionary<string, ScriptedAnswers> _names = new(StringComparer.OrdinalIgnoreCase);

    public HostAddressResolver Resolver => new((host, _) => _names.TryGetValue(host, out var answers)
        ? Task.FromResult(answers.Next())
        : throw new SocketException((int)SocketError.HostNotFound));

    /// <summary>A new name that answers <paramref name="answers"/> in turn.</summary>
    public (string Host, ScriptedAnswers Answers) Name(params string[][] answers)
    {
        var host = $"h{Guid.NewGuid():N}.example";
        var scripted = new ScriptedAnswers(answers);
        _names[host] = scripted;
        return (host, scripted);
    }
}

/// <summary>A server with the guard on for both features, on a DNS the tests script.</summary>
public sealed class GuardedSqliteServer : SqliteServer
{
    public ScriptedDns Dns { get; } = new();

    protected override void ConfigureServer(WebApplicationBuilder builder) => OutboundAddressGuardServerTests.Guard(builder, Dns);
}

public sealed class GuardedPostgresServer : PostgresServer
{
    public ScriptedDns Dns { get; } = new();

    protected override void ConfigureServer(WebApplicationBuilder builder) => OutboundAddressGuardServerTests.Guard(builder, Dns);
}

/// <summary>The guard as the broker and the MCP gateway use it, in a running server: refusals name their setting, and rebinding is refused.</summary>
public abstract class OutboundAddressGuardServerTests(LatchkeyServerFixture server, ScriptedDns dns)
{
    private const string PublicAddress = "93.184.215.14";

    public static void Guard(WebApplicationBuilder builder, ScriptedDns dns)
    {
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Broker:AllowPrivateNetworks"] = "false",
            ["Mcp:AllowPrivateNetworks"] = "false",
            ["Broker:ProviderAttempts"] = "1",
        });
        builder.Services.AddSingleton(dns.Resolver);
    }

    private static object CustomProvider(string host) => new
    {
        provider = "custom",
        client_id = "client",
        client_secret = "secret",
        custom = new { name = "Rebinding", authorize_url = $"https://{host}/authorize", token_url = $"https://{host}/token", default_scopes = new[] { "read" } },
    };

    [Fact]
    public async Task A_provider_on_a_private_address_is_refused_naming_the_setting_that_allows_it()
    {
        var caller = await CallerAsync(server);
        var (host, _) = dns.Name(["192.168.10.20"]);

        var refused = await PostAsync(caller, "/mcp/providers", CustomProvider(host), HttpStatusCode.BadRequest);

        var message = refused.GetProperty("message").GetString()!;
        Assert.Contains($"'{host}' resolves to a private", message);
        Assert.Contains("Broker:AllowPrivateNetworks", message);
    }

    [Fact]
    public async Task An_mcp_upstream_on_a_private_address_is_refused_naming_the_setting_that_allows_it()
    {
        var caller = await CallerAsync(server);

        var refused = await PostAsync(caller, "/mcp/servers", new { name = "Metadata", url = "https://[64:ff9b::a9fe:a9fe]/mcp" }, HttpStatusCode.BadRequest);

        var message = refused.GetProperty("message").GetString()!;
        Assert.Contains("169.254.0.0/16", message);
        Assert.Contains("Mcp:AllowPrivateNetworks", message);
    }

    [Fact]
    public async Task A_provider_that_rebinds_to_a_private_address_after_it_was_created_is_refused_at_the_token_call()
    {
        var caller = await CallerAsync(server);
        // Public for the two URLs checked at creation (authorize and token), private from then on.
        var (host, answers) = dns.Name([PublicAddress], [PublicAddress], ["10.0.0.7"]);
        var providerId = (await PostAsync(caller, "/mcp/providers", CustomProvider(host), HttpStatusCode.Created)).GetProperty("id").GetString()!;
        var state = (await PostAsync(caller, "/mcp/oauth/init", new { provider_id = providerId, redirect_uri = "https://agent.example.com/done" }))
            .GetProperty("state").GetString()!;
        await PostAsync(caller, "/mcp/oauth/callback", new { code = "code", state });

        var failed = await PostAsync(caller, "/mcp/oauth/exchange-token", new { state }, HttpStatusCode.BadGateway);

        Assert.Contains($"Refused to connect to '{host}'", failed.GetProperty("message").GetString());
        Assert.Equal(3, answers.Calls);
    }

    [Fact]
    public async Task An_mcp_upstream_that_rebinds_to_a_private_address_after_it_was_registered_is_refused_when_called()
    {
        var caller = await CallerAsync(server);
        var (host, _) = dns.Name([PublicAddress], ["127.0.0.1"]);
        var id = (await PostAsync(caller, "/mcp/servers", new { name = "Rebinding", url = $"https://{host}/mcp" }, HttpStatusCode.Created)).GetProperty("id").GetString()!;

        var response = await caller.Client.GetAsync($"/mcp/servers/{id}/tools");
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains($"Refused to connect to '{host}'", JsonDocument.Parse(text).RootElement.GetProperty("message").GetString());
    }
}

public sealed class OutboundAddressGuardServerTestsOnSqlite(GuardedSqliteServer server)
    : OutboundAddressGuardServerTests(server, server.Dns), IClassFixture<GuardedSqliteServer>;

public sealed class OutboundAddressGuardServerTestsOnPostgres(GuardedPostgresServer server)
    : OutboundAddressGuardServerTests(server, server.Dns), IClassFixture<GuardedPostgresServer>;

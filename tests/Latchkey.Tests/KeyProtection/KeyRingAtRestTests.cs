using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using System.Xml.Linq;
using Latchkey.Features.AuthorizationServer.Keys;
using Latchkey.Features.KeyProtection;
using Latchkey.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Latchkey.Tests.KeyProtection;

/// <summary>
/// The Data Protection key ring in the database is sealed under the master key, which is kept
/// apart from it: a copy of the database alone opens no session, no server key and no
/// credential; the server with its master key opens all of them, including a ring an earlier
/// release stored in plain text.
/// </summary>
public abstract class KeyRingAtRestTests(LatchkeyServerFixture server) : IAsyncLifetime
{
    private TestOAuthProvider _provider = null!;

    public async Task InitializeAsync() => _provider = await TestOAuthProvider.StartAsync();

    public async Task DisposeAsync() => await _provider.DisposeAsync();

    [Fact]
    public async Task The_key_ring_in_the_database_holds_no_key_in_plain_text()
    {
        await TestAccounts.SignUpAsync(server);
        var activeId = ActiveMasterKeyId();

        var rows = await server.WithDbAsync(db => db.DataProtectionKeys.AsNoTracking().Select(k => k.Xml!).ToListAsync());

        Assert.NotEmpty(rows);
        foreach (var xml in rows)
        {
            Assert.DoesNotContain("unencrypted form", xml);
            var key = XElement.Parse(xml);
            Assert.Empty(KeyRingCiphertext.PlaintextParts(key));
            Assert.DoesNotContain(key.Descendants(), e => e.Name.LocalName == "masterKey");
            var sealedParts = KeyRingCiphertext.SealedParts(key).ToList();
            Assert.NotEmpty(sealedParts);
            Assert.All(sealedParts, part => Assert.Equal(activeId, KeyRingCiphertext.MasterKeyIdOf(part.Ciphertext)));
        }
    }

    [Fact]
    public async Task Without_the_master_key_a_copy_of_the_database_opens_no_server_key_and_is_left_as_it_was()
    {
        await TestAccounts.SignUpAsync(server);
        var before = await KeyStateAsync();
        var otherKeyFile = Path.Combine(Path.GetTempPath(), "latchkey-tests", $"other-vault-{Guid.NewGuid():N}.json");
        try
        {
            // A server on a copy of the database with a master key of its own.
            await using (var stranger = Program.BuildWebApp([], WithSettings(("Vault:KeyFile", otherKeyFile))))
            await using (var scope = stranger.Services.CreateAsyncScope())
            {
                var refused = Assert.Throws<MasterKeyUnavailableException>(() => scope.ServiceProvider.GetRequiredService<ServerKeyRing>().GetOrCreate());
                Assert.Contains(ActiveMasterKeyId(), refused.Message);
            }
            // The command line refuses the same way, as a configuration error, and adds no key.
            var rotate = await RunCliAsync(["server-keys", "rotate"], ("Vault:KeyFile", otherKeyFile));
            Assert.Equal(2, rotate.ExitCode);
            Assert.Contains("Master key:", rotate.Error);

            Assert.Equal(before, await KeyStateAsync());
        }
        finally
        {
            File.Delete(otherKeyFile);
        }

        // A key of the same id but other bytes (a guess) does not open the ring either.
        var sealedPart = await server.WithDbAsync(async db =>
            KeyRingCiphertext.SealedParts(XElement.Parse((await db.DataProtectionKeys.AsNoTracking().FirstAsync()).Xml!)).First().Ciphertext);
        var guessed = new MasterKeys(new FixedMasterKeys(ActiveMasterKeyId(), RandomNumberGenerator.GetBytes(32)));
        var wrong = Assert.ThrowsAny<CryptographicException>(() => KeyRingCiphertext.Open(sealedPart, guessed));
        Assert.IsNotType<MasterKeyUnavailableException>(wrong);

        // With the master key, a server started afresh on the database reads the same keys the running one publishes.
        await using (var restarted = Program.BuildWebApp([], server.Configure))
        await using (var scope = restarted.Services.CreateAsyncScope())
        {
            var (signing, _, _) = scope.ServiceProvider.GetRequiredService<ServerKeyRing>().GetOrCreate();
            Assert.Equal(await PublishedKeyIdsAsync(), signing.Select(k => k.KeyId));
        }
    }

    [Fact]
    public async Task A_ring_an_earlier_release_stored_in_plain_text_is_encrypted_at_start_and_nothing_is_lost()
    {
        var issued = await OAuthClient.IssueAsync(server);
        var caller = await TestBroker.CallerAsync(server);
        var credentialId = await TestBroker.ConnectedCredentialAsync(caller, _provider);
        var publishedBefore = await PublishedKeyIdsAsync();
        var rewritten = await StoreRingInPlainTextAsync();
        Assert.True(rewritten > 0);
        Assert.Contains(await server.WithDbAsync(db => db.DataProtectionKeys.AsNoTracking().Select(k => k.Xml!).ToListAsync()),
            xml => xml.Contains("unencrypted form", StringComparison.Ordinal));

        await server.RestartAsync(() => Task.CompletedTask);

        // Encrypted in place, every element.
        var rows = await server.WithDbAsync(db => db.DataProtectionKeys.AsNoTracking().Select(k => k.Xml!).ToListAsync());
        Assert.All(rows, xml => Assert.Empty(KeyRingCiphertext.PlaintextParts(XElement.Parse(xml))));
        Assert.All(rows, xml => Assert.DoesNotContain("unencrypted form", xml));
        // The same signing keys, so tokens issued before still verify and introspect.
        Assert.Equal(publishedBefore, await PublishedKeyIdsAsync());
        var client = server.CreateClient();
        Assert.True((await OAuthClient.IntrospectAsync(client, issued.App, issued.AccessToken)).GetProperty("active").GetBoolean());
        Assert.Equal(HttpStatusCode.OK, (await OAuthClient.CallMeAsync(client, issued.AccessToken)).StatusCode);
        var refresh = await OAuthClient.TokenAsync(client, OAuthClient.RefreshParameters(issued.App, issued.RefreshToken));
        Assert.True(refresh.StatusCode == HttpStatusCode.OK, await refresh.Content.ReadAsStringAsync());
        // The session cookies from before still sign their owners in.
        Assert.Equal(HttpStatusCode.OK, (await issued.User.Session.GetAsync("/api/keys")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await caller.Account.Session.GetAsync("/api/keys")).StatusCode);
        // And the stored credential still decrypts.
        var token = await caller.Client.PostAsJsonAsync($"/mcp/credentials/{credentialId}/access-token", new { });
        Assert.True(token.StatusCode == HttpStatusCode.OK, await token.Content.ReadAsStringAsync());
        Assert.Equal(_provider.LastIssuedAccessToken, JsonDocument.Parse(await token.Content.ReadAsStringAsync()).RootElement.GetProperty("access_token").GetString());
    }

    [Fact]
    public async Task Rotating_the_master_key_re_encrypts_the_ring_and_every_session_stays_valid()
    {
        var cookies = new CookieContainer();
        var account = await TestAccounts.SignUpAsync(server, cookies: cookies);
        var previous = ActiveMasterKeyId();

        var rotate = await server.RunCliAsync(["vault", "rotate-key"]);

        Assert.True(rotate.ExitCode == 0, rotate.Error);
        var current = ActiveMasterKeyId();
        Assert.NotEqual(previous, current);
        Assert.Matches(@"re-encrypted [1-9]\d* Data Protection key element", rotate.Output);
        var rows = await server.WithDbAsync(db => db.DataProtectionKeys.AsNoTracking().Select(k => k.Xml!).ToListAsync());
        Assert.All(rows, xml => Assert.All(KeyRingCiphertext.SealedParts(XElement.Parse(xml)),
            part => Assert.Equal(current, KeyRingCiphertext.MasterKeyIdOf(part.Ciphertext))));

        // The running server keeps the session; a node that reads the ring afresh opens it with the new key.
        Assert.Equal(HttpStatusCode.OK, (await account.Session.GetAsync("/api/keys")).StatusCode);
        var (node, address) = await server.StartAnotherNodeAsync();
        await using (node)
        {
            using var elsewhere = server.CreateClient(cookies, address);
            Assert.Equal(HttpStatusCode.OK, (await elsewhere.GetAsync("/api/keys")).StatusCode);
            await node.StopAsync();
        }
    }

    [Fact]
    public async Task A_registered_master_key_provider_is_used_instead_of_the_key_file()
    {
        var kms = new FileBackedMasterKeys(server.VaultKeyFile);
        var unusedKeyFile = Path.Combine(Path.GetTempPath(), "latchkey-tests", $"unused-{Guid.NewGuid():N}.json");

        await using var app = Program.BuildWebApp([], builder =>
        {
            WithSettings(("Vault:KeyFile", unusedKeyFile))(builder);
            builder.Services.AddSingleton<IMasterKeyProvider>(kms);
        });
        await using var scope = app.Services.CreateAsyncScope();
        var (signing, _, _) = scope.ServiceProvider.GetRequiredService<ServerKeyRing>().GetOrCreate();

        Assert.Equal("a test KMS", app.Services.GetRequiredService<MasterKeys>().Source);
        Assert.True(kms.Loads > 0);
        Assert.Equal(await PublishedKeyIdsAsync(), signing.Select(k => k.KeyId));
        Assert.False(File.Exists(unusedKeyFile));
    }

    [Fact]
    public async Task Requiring_a_master_key_makes_a_missing_one_a_configuration_error_and_creates_none()
    {
        var missing = Path.Combine(Path.GetTempPath(), "latchkey-tests", $"missing-{Guid.NewGuid():N}.json");

        var refused = await RunCliAsync(["users", "create", "--email", TestAccounts.NewEmail(), "--name", "Nobody"],
            ("Vault:KeyFile", missing), ("Vault:RequireMasterKey", "true"));

        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("Vault:RequireMasterKey", refused.Error);
        Assert.Contains("LATCHKEY_Vault__MasterKeys__", refused.Error);
        Assert.False(File.Exists(missing));

        // The key file that exists is a master key: the same setting lets the command run.
        var allowed = await RunCliAsync(["users", "create", "--email", TestAccounts.NewEmail(), "--name", "Somebody"], ("Vault:RequireMasterKey", "true"));
        Assert.True(allowed.ExitCode == 0, allowed.Error);
    }

    /// <summary>
    /// Writes the ring back the way releases before the encryption stored it: each sealed part
    /// replaced by the element Data Protection handed to the encryptor, which is the plain-text
    /// element (with Data Protection's "unencrypted form" comment) an encryptor-less ring holds.
    /// </summary>
    private async Task<int> StoreRingInPlainTextAsync()
    {
        var masterKeys = server.Services.GetRequiredService<MasterKeys>();
        return await server.WithDbAsync(async db =>
        {
            var count = 0;
            foreach (var row in await db.DataProtectionKeys.ToListAsync())
            {
                var key = XElement.Parse(row.Xml!);
                foreach (var (secret, ciphertext) in KeyRingCiphertext.SealedParts(key).ToList())
                {
                    secret.ReplaceWith(KeyRingCiphertext.Open(ciphertext, masterKeys));
                    count++;
                }
                row.Xml = key.ToString(SaveOptions.DisableFormatting);
            }
            await db.SaveChangesAsync();
            return count;
        });
    }

    private string ActiveMasterKeyId() => JsonDocument.Parse(File.ReadAllText(server.VaultKeyFile)).RootElement.GetProperty("Active").GetString()!;

    private async Task<string> KeyStateAsync() => await server.WithDbAsync(async db =>
        string.Join("\n", await db.DataProtectionKeys.AsNoTracking().OrderBy(k => k.Id).Select(k => k.Xml!).ToListAsync()) + "\n" +
        string.Join("\n", await db.ServerKeys.AsNoTracking().OrderBy(k => k.Id).Select(k => k.Id + ":" + k.ProtectedMaterial).ToListAsync()));

    private async Task<List<string?>> PublishedKeyIdsAsync()
    {
        using var jwks = JsonDocument.Parse(await server.CreateClient().GetStringAsync("/.well-known/jwks"));
        return jwks.RootElement.GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("kid").GetString()).ToList();
    }

    private Action<WebApplicationBuilder> WithSettings(params (string Key, string Value)[] settings) => builder =>
    {
        server.Configure(builder);
        builder.Configuration.AddInMemoryCollection(settings.Select(s => KeyValuePair.Create(s.Key, (string?)s.Value)));
    };

    private async Task<CliRun> RunCliAsync(string[] args, params (string Key, string Value)[] settings)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exitCode = await Latchkey.Cli.LatchkeyCommandLine.InvokeAsync(args, WithSettings(settings), output, error, new StringReader(""));
        return new CliRun(exitCode, output.ToString(), error.ToString());
    }

    /// <summary>One master key given in code, as a KMS-backed provider would hand it over.</summary>
    private sealed class FixedMasterKeys(string id, byte[] key) : IMasterKeyProvider
    {
        public string Source => "a fixed test key";

        public MasterKeyMaterial Load() => new(new Dictionary<string, byte[]> { [id] = key }, id);
    }

    /// <summary>A provider of the deployment's own: here it hands over the keys of the fixture's key file.</summary>
    private sealed class FileBackedMasterKeys(string keyFile) : IMasterKeyProvider
    {
        private int _loads;

        public int Loads => _loads;

        public string Source => "a test KMS";

        public MasterKeyMaterial Load()
        {
            Interlocked.Increment(ref _loads);
            using var file = JsonDocument.Parse(File.ReadAllText(keyFile));
            var keys = file.RootElement.GetProperty("Keys").EnumerateObject().ToDictionary(k => k.Name, k => Convert.FromBase64String(k.Value.GetString()!));
            return new MasterKeyMaterial(keys, file.RootElement.GetProperty("Active").GetString()!);
        }
    }
}

public sealed class KeyRingAtRestTestsOnSqlite(SqliteServer server) : KeyRingAtRestTests(server), IClassFixture<SqliteServer>;

public sealed class KeyRingAtRestTestsOnPostgres(PostgresServer server) : KeyRingAtRestTests(server), IClassFixture<PostgresServer>;

using System.Security.Cryptography;
using System.Text;
using BenchmarkDotNet.Attributes;
using Latchkey.Common;
using Latchkey.Features.ApiKeys;
using Latchkey.Features.AuthorizationServer.Tokens;
using Latchkey.Features.Broker.Vault;

namespace Latchkey.Bench.Micro;

/// <summary>The per-request work on Latchkey's hot paths, without the database.</summary>
[MemoryDiagnoser]
public class HotSpotBenchmarks
{
    private string _accessToken = "";
    private string _apiKey = "";
    private byte[] _apiKeyHash = [];
    private byte[] _dataKey = [];
    private string _sealed = "";

    private const string Context = "broker_credentials:cred_github_001:access_token";

    [GlobalSetup]
    public void Setup()
    {
        _accessToken = TokenFormats.AccessToken.Generate();
        _apiKey = ApiKeyService.Format.Generate();
        _apiKeyHash = SecretHash.Compute(_apiKey);
        _dataKey = RandomNumberGenerator.GetBytes(32);
        _sealed = Seal(_dataKey, "gho_" + new string('x', 36), Context);
    }

    [Benchmark(Description = "access token: prefix, length and checksum")]
    public bool ParseAccessToken() => TokenFormats.AccessToken.IsWellFormed(_accessToken);

    [Benchmark(Description = "access token: stored reference id (SHA-256, base64)")]
    public string ReferenceId() => TokenFormats.StoredReferenceId(_accessToken);

    [Benchmark(Description = "API key: SHA-256 and constant-time compare")]
    public bool CheckApiKeyHash() => SecretHash.Matches(_apiKeyHash, _apiKey);

    [Benchmark(Description = "new opaque secret (random + checksum)")]
    public string GenerateSecret() => TokenFormats.AccessToken.Generate();

    [Benchmark(Description = "vault: AES-256-GCM decrypt of a provider token")]
    public string DecryptCredential() => SecretVault.Open(_dataKey, _sealed, Context);

    /// <summary>The vault's v1 layout: nonce, tag, ciphertext; the context is the associated data.</summary>
    private static string Seal(byte[] key, string plaintext, string context)
    {
        var plain = Encoding.UTF8.GetBytes(plaintext);
        var output = new byte[12 + 16 + plain.Length];
        RandomNumberGenerator.Fill(output.AsSpan(0, 12));
        using var aes = new AesGcm(key, 16);
        aes.Encrypt(output.AsSpan(0, 12), plain, output.AsSpan(28), output.AsSpan(12, 16), Encoding.UTF8.GetBytes(context));
        return Convert.ToBase64String(output);
    }
}

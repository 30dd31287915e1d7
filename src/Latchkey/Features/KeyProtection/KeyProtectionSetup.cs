using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.KeyProtection;

/// <summary>
/// The master keys, kept apart from the database, and what they protect directly: the Data
/// Protection key ring (cookies, antiforgery, and the server's signing and token keys, which
/// that ring protects). The broker's vault wraps its data keys with the same master keys.
/// </summary>
public static class KeyProtectionSetup
{
    public static WebApplicationBuilder AddKeyProtection(this WebApplicationBuilder builder)
    {
        // A provider registered before the features (a KMS) wins over configuration and the key file.
        var customProvider = builder.Services.Any(d => d.ServiceType == typeof(IMasterKeyProvider));
        builder.Services.AddOptions<VaultOptions>().BindConfiguration(VaultOptions.SectionName).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<VaultOptions>>(services =>
            new VaultOptionsValidator(services.GetRequiredService<IHostEnvironment>(), customProvider));
        builder.Services.TryAddSingleton<IMasterKeyProvider>(services =>
        {
            var options = services.GetRequiredService<IOptions<VaultOptions>>().Value;
            return options.MasterKeys.Count > 0
                ? new ConfiguredMasterKeys(options)
                : new MasterKeyFile(MasterKeyFile.Resolve(options, services.GetRequiredService<IHostEnvironment>()),
                    mayGenerate: !options.RequireMasterKey, services.GetRequiredService<ILogger<MasterKeyFile>>());
        });
        builder.Services.AddSingleton<MasterKeys>();

        // New Data Protection keys are sealed under the active master key before they are stored;
        // a ring sealed under keys this process lacks is refused rather than replaced.
        builder.Services.AddOptions<KeyManagementOptions>()
            .Configure<MasterKeys>((options, masterKeys) => options.XmlEncryptor = new KeyRingEncryptor(masterKeys))
            .PostConfigure<MasterKeys>((options, masterKeys) => options.XmlRepository = new MasterKeyCheckedRepository(
                options.XmlRepository ?? throw new InvalidOperationException("Data Protection has no key store; Operations persists it to the database."), masterKeys));
        builder.Services.AddSingleton<KeyRingAtRest>();
        builder.Services.AddHostedService(services => services.GetRequiredService<KeyRingAtRest>());
        return builder;
    }
}

/// <summary>Checks the master key settings before anything starts, so a missing key is a configuration error and never a new key.</summary>
internal sealed class VaultOptionsValidator(IHostEnvironment environment, bool customProvider) : IValidateOptions<VaultOptions>
{
    public ValidateOptionsResult Validate(string? name, VaultOptions options)
    {
        if (customProvider)
        {
            return ValidateOptionsResult.Success;
        }
        var failures = new List<string>();
        try
        {
            if (options.MasterKeys.Count > 0)
            {
                new ConfiguredMasterKeys(options).Load();
                if (options.ActiveMasterKeyId is { } active && !options.MasterKeys.ContainsKey(active))
                {
                    failures.Add($"Vault:ActiveMasterKeyId '{active}' is not among Vault:MasterKeys.");
                }
            }
            else if (options.RequireMasterKey && MasterKeyFile.Resolve(options, environment) is var keyFile && !File.Exists(keyFile))
            {
                failures.Add(
                    $"Vault:RequireMasterKey is on, but there is no master key: Vault:MasterKeys is empty and the key file {keyFile} does not exist. " +
                    "Give the keys, e.g. LATCHKEY_Vault__MasterKeys__mk1=\"$(openssl rand -base64 32)\" (keep every key that ever encrypted data), " +
                    "or point Vault:KeyFile at the existing key file.");
            }
        }
        catch (MasterKeyUnavailableException exception)
        {
            failures.Add(exception.Message);
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

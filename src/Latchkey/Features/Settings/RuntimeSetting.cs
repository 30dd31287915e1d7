using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Latchkey.Features.Settings;

/// <summary>
/// A setting an administrator changed at run time (<c>/admin/settings</c>). It overrides the
/// configured value of the same key until it is reset; every node reads it through the settings cache.
/// </summary>
public sealed class RuntimeSetting
{
    /// <summary>The configuration key it overrides, such as <c>Accounts:AllowSignUp</c>.</summary>
    public required string Key { get; init; }
    public required string Value { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
    /// <summary>The administrator's e-mail address (or the CLI command) that set it.</summary>
    public required string UpdatedBy { get; set; }
}

internal sealed class RuntimeSettingConfiguration : IEntityTypeConfiguration<RuntimeSetting>
{
    public void Configure(EntityTypeBuilder<RuntimeSetting> setting)
    {
        setting.ToTable("runtime_settings");
        setting.HasKey(s => s.Key);
        setting.Property(s => s.Key).HasMaxLength(100);
        setting.Property(s => s.Value).HasMaxLength(RuntimeSettingLimits.ValueMaxLength);
        setting.Property(s => s.UpdatedBy).HasMaxLength(256);
    }
}

public static class RuntimeSettingLimits
{
    public const int ValueMaxLength = 1000;
}

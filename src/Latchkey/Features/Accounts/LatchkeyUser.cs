using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Latchkey.Features.Accounts;

/// <summary>A person with an account. E-mail is the user name.</summary>
public sealed class LatchkeyUser : IdentityUser
{
    public string DisplayName { get; set; } = "";

    /// <summary>IANA time zone id, such as <c>Europe/Berlin</c>.</summary>
    public string TimeZone { get; set; } = "UTC";

    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>An administrator requires a second factor of this account: it must enrol before it can do anything else.</summary>
    public bool TwoFactorRequired { get; set; }
}

internal sealed class LatchkeyUserConfiguration : IEntityTypeConfiguration<LatchkeyUser>
{
    public void Configure(EntityTypeBuilder<LatchkeyUser> user)
    {
        user.Property(u => u.DisplayName).HasMaxLength(AccountLimits.DisplayNameMaxLength).IsRequired();
        user.Property(u => u.TimeZone).HasMaxLength(64).IsRequired();
    }
}

public static class AccountLimits
{
    public const int DisplayNameMaxLength = 100;
    public const int EmailMaxLength = 254;
    public const int PasswordMinLength = 12;
    public const int PasswordMaxLength = 256;
}

using System.Diagnostics.CodeAnalysis;
using Latchkey.Common;
using Microsoft.AspNetCore.Identity;

namespace Latchkey.Features.Accounts;

/// <summary>Creates accounts; shared by the sign-up page and <c>latchkey users create</c>.</summary>
public sealed class AccountRegistration(UserManager<LatchkeyUser> users, TimeProvider time)
{
    public sealed record Result(LatchkeyUser? User, IReadOnlyDictionary<string, string[]> Errors)
    {
        [MemberNotNullWhen(true, nameof(User))]
        public bool Succeeded => User is not null;
    }

    /// <param name="password">Null for an account that signs in only with another identity (ExternalSignIn).</param>
    /// <param name="emailConfirmed">True when whoever creates the account vouches for the address (an operator with the CLI, a provider that verified it).</param>
    public async Task<Result> RegisterAsync(string email, string displayName, string? timeZone, string? password, bool emailConfirmed = false)
    {
        var errors = new Dictionary<string, string[]>();
        email = email.Trim();
        displayName = displayName.Trim();
        timeZone = string.IsNullOrWhiteSpace(timeZone) ? "UTC" : timeZone.Trim();

        if (displayName.Length is 0 or > AccountLimits.DisplayNameMaxLength)
        {
            errors["display_name"] = [$"Enter a display name of 1 to {AccountLimits.DisplayNameMaxLength} characters."];
        }
        if (!TimeZones.IsKnown(timeZone))
        {
            errors["time_zone"] = [$"{InputEcho.Quote(timeZone)} is not a known time zone; use an IANA name such as Europe/Berlin or UTC."];
        }
        if (errors.Count > 0)
        {
            return new Result(null, errors);
        }

        var user = new LatchkeyUser
        {
            UserName = email,
            Email = email,
            DisplayName = displayName,
            TimeZone = timeZone,
            CreatedAt = time.GetUtcNow(),
            EmailConfirmed = emailConfirmed,
        };
        var created = password is null ? await users.CreateAsync(user) : await users.CreateAsync(user, password);
        if (created.Succeeded)
        {
            return new Result(user, errors);
        }
        foreach (var error in created.Errors)
        {
            var field = error.Code.Contains("Password", StringComparison.Ordinal) ? "password" : "email";
            // Identity's descriptions quote the e-mail address ("Email 'x' is already taken.").
            errors[field] = [.. errors.GetValueOrDefault(field) ?? [], InputEcho.LibraryMessage(error.Description)];
        }
        return new Result(null, errors);
    }
}

public static class TimeZones
{
    public static bool IsKnown(string id) =>
        id.Length <= 64 && TimeZoneInfo.TryFindSystemTimeZoneById(id, out _);
}

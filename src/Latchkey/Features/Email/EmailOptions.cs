using System.ComponentModel.DataAnnotations;
using System.Net;
using MimeKit;

namespace Latchkey.Features.Email;

/// <summary>How account e-mails are delivered (docs/configuration.md, "E-mail"). Bound from the <c>Email</c> section.</summary>
public sealed class EmailOptions : IValidatableObject
{
    public const string SectionName = "Email";

    /// <summary>The SMTP server (a relay or the mail provider's submission host). Without it, nothing is sent (the log says so).</summary>
    public string? SmtpHost { get; set; }

    [Range(1, 65535)]
    public int SmtpPort { get; set; } = 587;

    /// <summary>
    /// <c>StartTls</c> (port 587, the default), <c>Tls</c> (TLS from the first byte, port 465), or
    /// <c>None</c>: only to a relay on this machine (loopback), since reset links and the SMTP password would travel in clear.
    /// </summary>
    public SmtpSecurity SmtpSecurity { get; set; } = SmtpSecurity.StartTls;

    public string? SmtpUsername { get; set; }

    /// <summary>Give it as <c>LATCHKEY_Email__SmtpPassword</c> (or from a secret store), not in a file others read.</summary>
    public string? SmtpPassword { get; set; }

    /// <summary>The sender address, such as <c>latchkey@example.com</c>; required with <see cref="SmtpHost"/>.</summary>
    public string? From { get; set; }

    /// <summary>The sender's name people see.</summary>
    [Required]
    [StringLength(100)]
    public string FromName { get; set; } = "Latchkey";

    /// <summary>E-mail the account's owner about a new API key, a sign-in from a new address, and a credential that needs them to connect again.</summary>
    public bool SecurityNotices { get; set; } = true;

    /// <summary>How long one attempt at the SMTP server may take; a message is tried three times.</summary>
    [Range(5, 300)]
    public int TimeoutSeconds { get; set; } = 30;

    public bool SendsMail => !string.IsNullOrWhiteSpace(SmtpHost);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!SendsMail)
        {
            yield break;
        }
        if (string.IsNullOrWhiteSpace(From) || !MailboxAddress.TryParse(From, out _) || !From.Contains('@', StringComparison.Ordinal))
        {
            yield return new ValidationResult($"Email:From must be the sender's address (such as latchkey@example.com) when Email:SmtpHost is set.", [nameof(From)]);
        }
        if (SmtpSecurity == SmtpSecurity.None && !IsLoopback(SmtpHost!))
        {
            yield return new ValidationResult(
                $"Email:SmtpSecurity=None sends reset links (and the SMTP password) in clear, so it is only for a relay on this machine, not '{SmtpHost}'. " +
                "Use StartTls (port 587) or Tls (port 465).", [nameof(SmtpSecurity)]);
        }
        if (string.IsNullOrEmpty(SmtpUsername) != string.IsNullOrEmpty(SmtpPassword))
        {
            yield return new ValidationResult("Email:SmtpUsername and Email:SmtpPassword go together: set both, or neither for a relay that needs no sign-in.",
                [nameof(SmtpUsername), nameof(SmtpPassword)]);
        }
    }

    private static bool IsLoopback(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host, out var address) && IPAddress.IsLoopback(address));
}

public enum SmtpSecurity
{
    StartTls,
    Tls,
    None,
}

namespace Latchkey.Features.Accounts;

/// <summary>An e-mail to one person: what the account pages send (password reset links).</summary>
public sealed record AccountEmail(string To, string Subject, string Body);

/// <summary>
/// Where account e-mails go. Replace the registration (<c>services.AddSingleton&lt;IAccountEmailSender, YourSender&gt;()</c>)
/// to deliver them through your mail service.
/// </summary>
public interface IAccountEmailSender
{
    Task SendAsync(AccountEmail email, CancellationToken cancellationToken);
}

/// <summary>
/// The default sender: writes the e-mail to the log. The body carries a reset link, which is a
/// secret, so it is logged only in Development; elsewhere the log says a message was not sent.
/// </summary>
internal sealed partial class LogAccountEmailSender(IHostEnvironment environment, ILogger<LogAccountEmailSender> logger) : IAccountEmailSender
{
    public Task SendAsync(AccountEmail email, CancellationToken cancellationToken)
    {
        if (environment.IsDevelopment())
        {
            LogEmail(logger, email.To, email.Subject, email.Body);
        }
        else
        {
            LogNotSent(logger, email.Subject);
        }
        return Task.CompletedTask;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "E-mail to {To}: {Subject}\n{Body}")]
    private static partial void LogEmail(ILogger logger, string to, string subject, string body);

    [LoggerMessage(Level = LogLevel.Warning, Message = "An e-mail ({Subject}) was not sent: no e-mail sender is configured (see docs/configuration.md, Accounts e-mail)")]
    private static partial void LogNotSent(ILogger logger, string subject);
}

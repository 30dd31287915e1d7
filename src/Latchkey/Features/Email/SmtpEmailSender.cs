using System.Threading.Channels;
using Latchkey.Features.Accounts;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.Extensions.Options;
using MimeKit;

namespace Latchkey.Features.Email;

/// <summary>
/// Account e-mails through SMTP, sent off the request path: the page that asks for one answers at
/// once, whether or not the address has an account and however slow the mail server is, so its
/// timing tells nothing either. <see cref="SmtpDelivery"/> sends what is queued.
/// </summary>
internal sealed class SmtpEmailSender : IAccountEmailSender
{
    private readonly Channel<AccountEmail> _queue = Channel.CreateBounded<AccountEmail>(new BoundedChannelOptions(10_000)
    {
        FullMode = BoundedChannelFullMode.DropWrite,
        SingleReader = true,
    });

    internal ChannelReader<AccountEmail> Queued => _queue.Reader;

    public Task SendAsync(AccountEmail email, CancellationToken cancellationToken)
    {
        _queue.Writer.TryWrite(email);
        return Task.CompletedTask;
    }
}

/// <summary>Delivers the queued e-mails, each tried up to three times; a failure is logged without the message (it may carry a reset link).</summary>
internal sealed partial class SmtpDelivery(SmtpEmailSender sender, IOptions<EmailOptions> options, ILogger<SmtpDelivery> logger) : BackgroundService
{
    private static readonly TimeSpan[] Backoff = [TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(10)];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await foreach (var email in sender.Queued.ReadAllAsync(stoppingToken))
        {
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    await SendAsync(email, stoppingToken);
                    LogSent(logger, email.Subject);
                    break;
                }
                catch (Exception exception) when (exception is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                {
                    if (attempt >= Backoff.Length)
                    {
                        LogFailed(logger, email.Subject, attempt + 1, exception.Message);
                        break;
                    }
                    await Task.Delay(Backoff[attempt], stoppingToken);
                }
            }
        }
    }

    private async Task SendAsync(AccountEmail email, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var message = new MimeMessage();
        message.From.Add(new MailboxAddress(settings.FromName, settings.From!));
        message.To.Add(MailboxAddress.Parse(email.To));
        message.Subject = email.Subject;
        // RFC 3834: an automatic message; vacation responders do not answer it.
        message.Headers.Add("Auto-Submitted", "auto-generated");
        // Text and HTML as alternatives of the same words: a client shows the one it prefers.
        message.Body = new BodyBuilder { TextBody = email.Body, HtmlBody = email.HtmlBody }.ToMessageBody();

        using var client = new SmtpClient { Timeout = settings.TimeoutSeconds * 1000 };
        await client.ConnectAsync(settings.SmtpHost!, settings.SmtpPort, settings.SmtpSecurity switch
        {
            SmtpSecurity.Tls => SecureSocketOptions.SslOnConnect,
            SmtpSecurity.None => SecureSocketOptions.None,
            _ => SecureSocketOptions.StartTls,
        }, cancellationToken);
        if (!string.IsNullOrEmpty(settings.SmtpUsername))
        {
            await client.AuthenticateAsync(settings.SmtpUsername, settings.SmtpPassword!, cancellationToken);
        }
        await client.SendAsync(message, cancellationToken);
        await client.DisconnectAsync(quit: true, cancellationToken);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "E-mail sent: {Subject}")]
    private static partial void LogSent(ILogger logger, string subject);

    [LoggerMessage(Level = LogLevel.Warning, Message = "An e-mail ({Subject}) could not be sent after {Attempts} attempts: {Reason}")]
    private static partial void LogFailed(ILogger logger, string subject, int attempts, string reason);
}

using System.Text;
using System.Text.Encodings.Web;

namespace Latchkey.Features.Accounts;

/// <summary>
/// An e-mail to one person (password reset and confirmation links, security notices): the plain
/// text <paramref name="Body"/>, and the same words as HTML where <see cref="AccountEmailTemplate"/> made it.
/// </summary>
public sealed record AccountEmail(string To, string Subject, string Body, string? HtmlBody = null);

/// <summary>A link an e-mail asks its reader to follow, shown as a button in HTML and as a line of its own in text.</summary>
public sealed record EmailAction(string Label, string Url);

/// <summary>
/// Latchkey's one e-mail layout, in plain text and in HTML with the same words: a greeting, what
/// happened, at most one action, what to do if it was not you. The HTML is encoded throughout (a
/// display name or an app's name is text, never markup), uses inline styles only (mail clients
/// drop style sheets), and loads nothing: no images, no tracking.
/// </summary>
public static class AccountEmailTemplate
{
    public static AccountEmail Compose(string to, string subject, string name, IReadOnlyList<string> paragraphs,
        EmailAction? action = null, IReadOnlyList<string>? closing = null)
    {
        var text = new StringBuilder().Append("Hello ").Append(name).Append(",\n");
        foreach (var paragraph in paragraphs)
        {
            text.Append('\n').Append(paragraph).Append('\n');
        }
        if (action is not null)
        {
            text.Append('\n').Append(action.Label).Append(":\n").Append(action.Url).Append('\n');
        }
        foreach (var paragraph in closing ?? [])
        {
            text.Append('\n').Append(paragraph).Append('\n');
        }

        var html = HtmlEncoder.Default;
        var body = new StringBuilder()
            .Append("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
            .Append("<title>").Append(html.Encode(subject)).Append("</title></head>")
            .Append("<body style=\"margin:0;padding:24px 12px;background:#f4f6f9;color:#1b2430;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif\">")
            .Append("<div style=\"max-width:32rem;margin:0 auto;background:#ffffff;border:1px solid #c9d1db;border-radius:10px;padding:24px\">")
            .Append("<p style=\"margin:0 0 16px;font-weight:700;font-size:18px\">Latchkey</p>")
            .Append("<p>Hello ").Append(html.Encode(name)).Append(",</p>");
        foreach (var paragraph in paragraphs)
        {
            body.Append("<p>").Append(html.Encode(paragraph)).Append("</p>");
        }
        if (action is not null)
        {
            body.Append("<p style=\"margin:24px 0\"><a href=\"").Append(html.Encode(action.Url))
                .Append("\" style=\"display:inline-block;background:#0b5cad;color:#ffffff;text-decoration:none;font-weight:600;padding:10px 18px;border-radius:6px\">")
                .Append(html.Encode(action.Label)).Append("</a></p>")
                .Append("<p style=\"color:#4a5563;font-size:14px;overflow-wrap:anywhere\">Or open this address: ").Append(html.Encode(action.Url)).Append("</p>");
        }
        foreach (var paragraph in closing ?? [])
        {
            body.Append("<p>").Append(html.Encode(paragraph)).Append("</p>");
        }
        body.Append("<p style=\"margin-top:24px;color:#4a5563;font-size:13px\">This message was sent automatically by Latchkey; replies are not read.</p>")
            .Append("</div></body></html>");
        return new AccountEmail(to, subject, text.ToString(), body.ToString());
    }
}

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

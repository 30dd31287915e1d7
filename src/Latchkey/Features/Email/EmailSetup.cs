using Latchkey.Features.Accounts;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Latchkey.Features.Email;

/// <summary>
/// E-mail delivery: with <c>Email:SmtpHost</c> set, account e-mails go out through SMTP (queued,
/// see <see cref="SmtpEmailSender"/>). A sender registered in code before this wins; without
/// either, the accounts feature's default logs that nothing was sent.
/// </summary>
public static class EmailSetup
{
    public static WebApplicationBuilder AddEmail(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<EmailOptions>().BindConfiguration(EmailOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<SecurityNotices>();
        builder.Services.AddHostedService<SecurityNoticeMailer>();
        var options = builder.Configuration.GetSection(EmailOptions.SectionName).Get<EmailOptions>() ?? new EmailOptions();
        if (options.SendsMail && !builder.Services.Any(service => service.ServiceType == typeof(IAccountEmailSender)))
        {
            builder.Services.AddSingleton<SmtpEmailSender>();
            builder.Services.TryAddSingleton<IAccountEmailSender>(services => services.GetRequiredService<SmtpEmailSender>());
            builder.Services.AddHostedService<SmtpDelivery>();
        }
        return builder;
    }
}

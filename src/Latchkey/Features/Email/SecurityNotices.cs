using System.Threading.Channels;
using Latchkey.Common;
using Latchkey.Features.Accounts;
using Latchkey.Features.SecurityEvents;
using Latchkey.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Email;

/// <summary>
/// Security notices by e-mail (<c>Email:SecurityNotices</c>): a new API key, a sign-in from an
/// address the account has not signed in from before, a stored credential that needs the person
/// to connect again. Noting one costs the request a queued item; <see cref="SecurityNoticeMailer"/>
/// looks up the account and sends. Ids, names and addresses only: never a secret.
/// </summary>
public sealed class SecurityNotices(
    IHttpContextAccessor http, IOptions<Operations.ServerOptions> server, IAccountEmailSender sender, TimeProvider time)
{
    // Without a way to deliver them (no SMTP settings, no sender of the operator's), notices are not
    // queued at all, rather than each written to the log as not sent. Whether they are wanted
    // (Email:SecurityNotices) may change at run time: the mailer asks when it sends.
    private readonly bool _delivers = sender is not LogAccountEmailSender;

    /// <param name="Site">The server's address for the links in the e-mail: the issuer or the request's, or <c>Server:PublicUrl</c> off a request.</param>
    internal abstract record Notice(string UserId, DateTimeOffset At, string? Address, string Site);

    internal sealed record ApiKeyNotice(string UserId, DateTimeOffset At, string? Address, string Site, string KeyId, string Name, string Scopes)
        : Notice(UserId, At, Address, Site);

    internal sealed record SignInNotice(string UserId, DateTimeOffset At, string? Address, string Site, string? UserAgent) : Notice(UserId, At, Address, Site);

    internal sealed record CredentialNotice(string UserId, DateTimeOffset At, string? Address, string Site, string CredentialId, string Provider, string? Account)
        : Notice(UserId, At, Address, Site);

    private readonly Channel<Notice> _queue = Channel.CreateBounded<Notice>(new BoundedChannelOptions(10_000)
    {
        FullMode = BoundedChannelFullMode.DropWrite,
        SingleReader = true,
    });

    internal ChannelReader<Notice> Queued => _queue.Reader;

    public void ApiKeyCreated(string userId, string keyId, string name, string scopes) =>
        Note(new ApiKeyNotice(userId, time.GetUtcNow(), Address(), Site(), keyId, name, scopes));

    public void SignedIn(string userId) =>
        Note(new SignInNotice(userId, time.GetUtcNow(), Address(), Site(), http.HttpContext?.Request.Headers.UserAgent.ToString()));

    public void CredentialNeedsReauthorization(string userId, string credentialId, string provider, string? account) =>
        Note(new CredentialNotice(userId, time.GetUtcNow(), null, Site(), credentialId, provider, account));

    private void Note(Notice notice)
    {
        if (_delivers)
        {
            _queue.Writer.TryWrite(notice);
        }
    }

    // The same address as the account e-mails' links (the configured issuer, else the request's).
    private string Site() => http.HttpContext is { } context
        ? ServerAddress.Base(context)
        : server.Value.PublicUrl?.TrimEnd('/') ?? "";

    private string? Address() => ClientAddress.Of(http.HttpContext)?.ToString();
}

/// <summary>Turns queued <see cref="SecurityNotices"/> into e-mails to the account's address.</summary>
internal sealed partial class SecurityNoticeMailer(
    SecurityNotices notices, IServiceScopeFactory scopes, IAccountEmailSender sender, SecurityEventLog securityEvents, Settings.RuntimeSettings settings,
    ILogger<SecurityNoticeMailer> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await foreach (var notice in notices.Queued.ReadAllAsync(stoppingToken))
        {
            try
            {
                if (!await settings.AreSecurityNoticesOnAsync(stoppingToken))
                {
                    continue;
                }
                await using var scope = scopes.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<LatchkeyDbContext>();
                var user = await db.Users.AsNoTracking().Where(u => u.Id == notice.UserId)
                    .Select(u => new { u.Email, u.DisplayName }).FirstOrDefaultAsync(stoppingToken);
                if (user?.Email is null || await EmailFor(notice, user.Email, user.DisplayName, db, stoppingToken) is not { } email)
                {
                    continue;
                }
                await sender.SendAsync(email, stoppingToken);
            }
            catch (Exception exception) when (exception is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                LogFailed(logger, notice.GetType().Name, exception.Message);
            }
        }
    }

    private async Task<AccountEmail?> EmailFor(SecurityNotices.Notice notice, string to, string name, LatchkeyDbContext db, CancellationToken cancellationToken)
    {
        var when = notice.At.ToString("yyyy-MM-dd HH:mm 'UTC'", System.Globalization.CultureInfo.InvariantCulture);
        var from = notice.Address is { } address ? $" from {address}" : "";
        var site = notice.Site;
        string[] notYou = ["If this was not you, sign in, look at your security log, and change your password."];
        switch (notice)
        {
            case SecurityNotices.ApiKeyNotice key:
                return AccountEmailTemplate.Compose(to, "A new API key was created for your Latchkey account", name,
                    [$"A new API key \"{key.Name}\" ({key.KeyId}) with the scopes {key.Scopes} was created for your account on {when}{from}.",
                     "If this was not you, revoke it on your API keys page."],
                    new EmailAction("Review your API keys", $"{site}/profile/api-keys"), notYou);
            case SecurityNotices.SignInNotice signIn when await IsNewAddressAsync(signIn, db, cancellationToken):
                return AccountEmailTemplate.Compose(to, "New sign-in to your Latchkey account", name,
                    [$"Your account was signed in to on {when}{from}, an address it had not signed in from before" +
                     (string.IsNullOrEmpty(signIn.UserAgent) ? "" : $" ({signIn.UserAgent})") + "."],
                    new EmailAction("Open your security log", $"{site}/profile/security-events"), notYou);
            case SecurityNotices.CredentialNotice credential:
                return AccountEmailTemplate.Compose(to, $"Your {credential.Provider} connection needs you to sign in again", name,
                    [$"The {credential.Provider} credential {credential.CredentialId}" + (credential.Account is null ? "" : $" ({credential.Account})") +
                     $" stopped working on {when}: {credential.Provider} no longer accepts it, so the tools that use it will fail."],
                    new EmailAction("Connect the account again", $"{site}/profile/connections"));
            default:
                return null;
        }
    }

    /// <summary>The account has signed in before, but never from this address (the sign-in being noted aside).</summary>
    private async Task<bool> IsNewAddressAsync(SecurityNotices.SignInNotice signIn, LatchkeyDbContext db, CancellationToken cancellationToken)
    {
        if (signIn.Address is null)
        {
            return false;
        }
        // The sign-ins recorded so far are in the database, not in the log's queue.
        await securityEvents.FlushAsync(cancellationToken);
        var earlier = await db.SecurityEvents.AsNoTracking()
            .Where(e => e.AccountId == signIn.UserId && e.Type == SecurityEventTypes.SignIn)
            .OrderByDescending(e => e.Id).Skip(1).Select(e => e.IpAddress).Take(1000).ToListAsync(cancellationToken);
        return earlier.Count > 0 && !earlier.Contains(signIn.Address);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "A security notice ({Notice}) could not be sent: {Reason}")]
    private static partial void LogFailed(ILogger logger, string notice, string reason);
}

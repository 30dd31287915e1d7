using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using Latchkey.Features.Email;
using Latchkey.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using MimeKit;

namespace Latchkey.Tests.Accounts;

/// <summary>
/// Account e-mail through SMTP, received by a real SMTP server on loopback (Debian's aiosmtpd,
/// its Mailbox handler writing each message to a maildir) and read back with MimeKit.
/// </summary>
public sealed partial class EmailTests(EmailServer server) : IClassFixture<EmailServer>
{
    [Fact]
    public async Task A_password_reset_link_arrives_by_smtp_and_resets_the_password()
    {
        var account = await TestAccounts.SignUpAsync(server);
        var anonymous = server.CreateClient();

        var asked = await Browser.SubmitFormAsync(anonymous, "/account/forgot-password", new Dictionary<string, string> { ["Email"] = account.Email });
        Assert.Equal(HttpStatusCode.OK, asked.StatusCode);

        var message = await server.Smtp.WaitForMessageToAsync(account.Email, TimeSpan.FromSeconds(30), "Reset your Latchkey password");
        Assert.Equal("Reset your Latchkey password", message.Subject);
        Assert.Equal("noreply@latchkey.test", message.From.Mailboxes.Single().Address);
        Assert.Equal("Latchkey Test", message.From.Mailboxes.Single().Name);
        Assert.Equal("auto-generated", message.Headers["Auto-Submitted"]);
        var link = new Uri(ResetLink().Match(message.TextBody ?? "").Value);
        Assert.Equal(server.BaseAddress.Authority, link.Authority);

        var reset = await Browser.SubmitFormAsync(anonymous, link.PathAndQuery, new Dictionary<string, string>
        {
            ["Input.Password"] = "a pass phrase from the mail",
            ["Input.ConfirmPassword"] = "a pass phrase from the mail",
        });
        Assert.Contains("Your password is changed", await reset.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_new_account_is_sent_its_confirmation_link_as_text_and_html_with_the_same_words()
    {
        var account = await TestAccounts.SignUpAsync(server);

        var message = await server.Smtp.WaitForMessageToAsync(account.Email, TimeSpan.FromSeconds(30), "Confirm your e-mail address for Latchkey");

        Assert.Equal("multipart/alternative", message.Body!.ContentType.MimeType);
        var link = ConfirmLink().Match(message.TextBody ?? "").Value;
        Assert.StartsWith($"{server.BaseAddress.AbsoluteUri.TrimEnd('/')}/account/confirm-email?user=", link);
        Assert.Contains("Hello Test User,", message.TextBody);
        // The HTML names the same link (encoded), as a button, and loads nothing from anywhere.
        Assert.Contains($"href=\"{System.Text.Encodings.Web.HtmlEncoder.Default.Encode(link)}\"", message.HtmlBody);
        Assert.Contains(">Confirm my address</a>", message.HtmlBody);
        Assert.DoesNotContain("<img", message.HtmlBody);
        Assert.DoesNotContain("<script", message.HtmlBody);
    }

    [Fact]
    public async Task An_unknown_address_gets_the_same_answer_and_no_mail()
    {
        var unknown = TestAccounts.NewEmail();
        var known = await TestAccounts.SignUpAsync(server);

        var answer = await Browser.SubmitFormAsync(server.CreateClient(), "/account/forgot-password", new Dictionary<string, string> { ["Email"] = unknown });
        // A message asked for after it arrives first: the unknown address's would have been queued before.
        await Browser.SubmitFormAsync(server.CreateClient(), "/account/forgot-password", new Dictionary<string, string> { ["Email"] = known.Email });
        await server.Smtp.WaitForMessageToAsync(known.Email, TimeSpan.FromSeconds(30), "Reset your Latchkey password");

        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Empty(server.Smtp.MessagesTo(unknown));
    }

    [Fact]
    public async Task A_new_api_key_and_a_sign_in_from_a_new_address_are_told_to_the_owner_once()
    {
        // Signed up from 127.0.0.1 (the sign-up signs in); the proxy in front says where the next ones come from.
        var account = await TestAccounts.SignUpAsync(server);
        await SignInAsync(account, from: "203.0.113.9");
        await SignInAsync(account, from: "203.0.113.9");
        await SignInAsync(account, from: null);

        var created = await account.Session.PostAsJsonAsync("/api/keys", new { name = "deploy bot", scopes = new[] { "IDENTITY" } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var body = await created.Content.ReadFromJsonAsync<JsonElement>();
        var (keyId, secret) = (body.GetProperty("id").GetString()!, body.GetProperty("key").GetString()!);

        var keyNotice = await server.Smtp.WaitForMessageToAsync(account.Email, TimeSpan.FromSeconds(30), "A new API key was created for your Latchkey account");
        Assert.Contains($"\"deploy bot\" ({keyId}) with the scopes IDENTITY", keyNotice.TextBody);
        Assert.Contains($"{server.BaseAddress.AbsoluteUri.TrimEnd('/')}/profile/api-keys", keyNotice.TextBody);
        Assert.DoesNotContain(secret, keyNotice.TextBody);
        // Notices go out in order: by now the sign-ins' have too. One, for the one new address.
        var signIns = server.Smtp.MessagesTo(account.Email).Where(m => m.Subject == "New sign-in to your Latchkey account").ToList();
        var signIn = Assert.Single(signIns);
        Assert.Contains("from 203.0.113.9, an address it had not signed in from before", signIn.TextBody);
    }

    [Fact]
    public async Task A_credential_that_stopped_working_is_told_to_its_owner()
    {
        await using var provider = await TestOAuthProvider.StartAsync();
        var caller = await TestBroker.CallerAsync(server);
        var valid = true;
        provider.ApiAccepts = headers => valid && headers["X-API-Key"].ToString() == "live-key";
        var providerId = (await TestBroker.SendAsync(caller, HttpMethod.Post, "/mcp/providers", new { provider = "custom", custom = provider.TypedDefinition("api_key") }, HttpStatusCode.Created))
            .GetProperty("id").GetString()!;
        var credentialId = (await TestBroker.SendAsync(caller, HttpMethod.Post, "/mcp/credentials", new { provider_id = providerId, api_key = "live-key" }, HttpStatusCode.Created))
            .GetProperty("id").GetString()!;

        valid = false;
        await TestBroker.SendAsync(caller, HttpMethod.Post, $"/mcp/credentials/{credentialId}/check", null, HttpStatusCode.OK);

        var notice = await server.Smtp.WaitForMessageToAsync(caller.AccountEmail, TimeSpan.FromSeconds(30), "connection needs you to sign in again");
        Assert.Contains(credentialId, notice.TextBody);
        Assert.Contains("/profile/connections", notice.TextBody);
        Assert.DoesNotContain("live-key", notice.TextBody);
    }

    private async Task SignInAsync(TestAccount account, string? from)
    {
        var client = server.CreateClient();
        if (from is not null)
        {
            client.DefaultRequestHeaders.Add("X-Forwarded-For", from);
        }
        Assert.Equal(HttpStatusCode.Redirect, (await TestAccounts.SignInAsync(client, account.Email, account.Password)).StatusCode);
    }

    [Theory]
    [InlineData("smtp.example.com", SmtpSecurity.None, "noreply@example.com", null, "only for a relay on this machine")]
    [InlineData("smtp.example.com", SmtpSecurity.StartTls, "not an address", null, "Email:From must be the sender's address")]
    [InlineData("smtp.example.com", SmtpSecurity.StartTls, "noreply@example.com", "user", "go together")]
    public void Settings_that_would_leak_or_cannot_work_are_refused_at_start(string host, SmtpSecurity security, string from, string? username, string expected)
    {
        var options = new EmailOptions { SmtpHost = host, SmtpSecurity = security, From = from, SmtpUsername = username };

        var errors = options.Validate(new System.ComponentModel.DataAnnotations.ValidationContext(options)).ToList();

        Assert.Contains(errors, error => error.ErrorMessage!.Contains(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("127.0.0.1", SmtpSecurity.None)]
    [InlineData("localhost", SmtpSecurity.None)]
    [InlineData("smtp.example.com", SmtpSecurity.StartTls)]
    [InlineData("smtp.example.com", SmtpSecurity.Tls)]
    public void A_relay_on_this_machine_may_be_plain_and_any_other_uses_TLS(string host, SmtpSecurity security)
    {
        var options = new EmailOptions { SmtpHost = host, SmtpSecurity = security, From = "noreply@example.com" };

        Assert.Empty(options.Validate(new System.ComponentModel.DataAnnotations.ValidationContext(options)));
    }

    [GeneratedRegex(@"https?://\S+/account/reset-password\?\S+")]
    private static partial Regex ResetLink();

    [GeneratedRegex(@"https?://\S+/account/confirm-email\?\S+")]
    private static partial Regex ConfirmLink();
}

/// <summary>An SMTP server on loopback: aiosmtpd (Debian's python3-aiosmtpd) writing what it receives to a maildir.</summary>
public sealed class LoopbackSmtpServer : IDisposable
{
    private readonly Process _process;
    private readonly string _maildir = Directory.CreateTempSubdirectory("latchkey-maildir-").FullName;

    public LoopbackSmtpServer()
    {
        Port = FreePorts.Next();
        // A maildir's three folders (Python's mailbox makes them only for a folder that does not exist yet).
        foreach (var folder in new[] { "tmp", "new", "cur" })
        {
            Directory.CreateDirectory(Path.Combine(_maildir, folder));
        }
        var start = new ProcessStartInfo("/usr/bin/python3", ["-m", "aiosmtpd", "-n", "-l", $"127.0.0.1:{Port}", "-c", "aiosmtpd.handlers.Mailbox", _maildir])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        try
        {
            _process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            throw new InvalidOperationException("/usr/bin/python3 is missing; on Debian: apt-get install python3-aiosmtpd (README, \"Tests\").");
        }
        // Until it accepts connections (or says why it cannot).
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException("aiosmtpd did not start (apt-get install python3-aiosmtpd): " + _process.StandardError.ReadToEnd());
            }
            try
            {
                using var probe = new TcpClient();
                probe.Connect(IPAddress.Loopback, Port);
                break;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(100);
            }
        }
    }

    public int Port { get; }

    public List<MimeMessage> MessagesTo(string address)
    {
        var folder = Path.Combine(_maildir, "new");
        return !Directory.Exists(folder)
            ? []
            : Directory.EnumerateFiles(folder).Select(file => MimeMessage.Load(file))
                .Where(m => m.To.Mailboxes.Any(to => string.Equals(to.Address, address, StringComparison.OrdinalIgnoreCase))).ToList();
    }

    public async Task<MimeMessage> WaitForMessageToAsync(string address, TimeSpan timeout, string? subjectEnding = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (MessagesTo(address).FirstOrDefault(m => subjectEnding is null || (m.Subject ?? "").EndsWith(subjectEnding, StringComparison.Ordinal)) is { } message)
            {
                return message;
            }
            Assert.True(DateTime.UtcNow < deadline, $"No e-mail to {address} arrived within {timeout.TotalSeconds:0} s.");
            await Task.Delay(100);
        }
    }

    public void Dispose()
    {
        _process.Kill(entireProcessTree: true);
        _process.Dispose();
        Directory.Delete(_maildir, recursive: true);
    }
}

/// <summary>A server that sends its account e-mail to <see cref="LoopbackSmtpServer"/>.</summary>
public sealed class EmailServer : SqliteServer
{
    public LoopbackSmtpServer Smtp { get; } = new();

    protected override void ConfigureServer(WebApplicationBuilder builder)
    {
        builder.Configuration["Email:SmtpHost"] = "127.0.0.1";
        builder.Configuration["Email:SmtpPort"] = Smtp.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        builder.Configuration["Email:SmtpSecurity"] = "None";
        builder.Configuration["Email:From"] = "noreply@latchkey.test";
        builder.Configuration["Email:FromName"] = "Latchkey Test";
        // The sign-in notices tell addresses apart: tests say where a request comes from as a proxy would.
        builder.Configuration["Server:TrustForwardedHeaders"] = "true";
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Smtp.Dispose();
    }
}

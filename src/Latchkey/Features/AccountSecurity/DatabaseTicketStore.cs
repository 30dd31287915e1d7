using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Latchkey.Cluster;
using Latchkey.Storage;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.AccountSecurity;

/// <summary>
/// Browser sessions kept in the database (<see cref="AccountSession"/>), so that a person can see
/// where they are signed in and end any one of those sessions, on every node at once. The cookie
/// holds a random key; the ticket is encrypted with Data Protection (whose keys are encrypted under
/// the master key), and the row is found by the key's SHA-256.
/// </summary>
public sealed class DatabaseTicketStore(IServiceScopeFactory scopes, IDataProtectionProvider dataProtection, IOptions<IdentityOptions> identity,
    TimeProvider time) : ITicketStore
{
    /// <summary>Last-seen times move at most this often per session (one write a minute, not one per request).</summary>
    public static readonly TimeSpan LastSeenGranularity = TimeSpan.FromMinutes(1);

    /// <summary>Sessions without an expiry (none are issued so) are kept this long.</summary>
    private static readonly TimeSpan DefaultLifetime = TimeSpan.FromDays(14);

    private readonly IDataProtector _protector = dataProtection.CreateProtector("Latchkey.AccountSessions.Ticket.v1");

    /// <summary>The claim that names a ticket's own session (its row id), for the session list's "this browser".</summary>
    public const string SessionClaim = "latchkey_session";

    /// <summary>The session key's row id: its SHA-256 in hex.</summary>
    public static string IdOf(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    public Task<string> StoreAsync(AuthenticationTicket ticket) => StoreAsync(ticket, null!, CancellationToken.None);

    public Task<string> StoreAsync(AuthenticationTicket ticket, CancellationToken cancellationToken) => StoreAsync(ticket, null!, cancellationToken);

    public async Task<string> StoreAsync(AuthenticationTicket ticket, HttpContext httpContext, CancellationToken cancellationToken)
    {
        var userId = ticket.Principal.FindFirstValue(identity.Value.ClaimsIdentity.UserIdClaimType)
            ?? throw new InvalidOperationException("A session ticket without a user id.");
        var key = OpaqueKey();
        var now = time.GetUtcNow();
        Name(ticket, IdOf(key));
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LatchkeyDbContext>();
        db.AccountSessions.Add(new AccountSession
        {
            Id = IdOf(key),
            UserId = userId,
            Ticket = Protect(ticket),
            CreatedAt = now,
            LastSeenAt = now,
            ExpiresAt = ticket.Properties.ExpiresUtc ?? now + DefaultLifetime,
            IpAddress = Truncate(httpContext?.Connection.RemoteIpAddress?.ToString(), 64),
            UserAgent = Truncate(httpContext?.Request.Headers.UserAgent.ToString(), 256),
        });
        await db.SaveChangesAsync(cancellationToken);
        return key;
    }

    public Task RenewAsync(string key, AuthenticationTicket ticket) => RenewAsync(key, ticket, null!, CancellationToken.None);

    public Task RenewAsync(string key, AuthenticationTicket ticket, CancellationToken cancellationToken) => RenewAsync(key, ticket, null!, cancellationToken);

    public async Task RenewAsync(string key, AuthenticationTicket ticket, HttpContext httpContext, CancellationToken cancellationToken)
    {
        var id = IdOf(key);
        // Identity's periodic refresh builds a new principal: it gets its session's name again.
        Name(ticket, id);
        var ticketBytes = Protect(ticket);
        var now = time.GetUtcNow();
        var expires = ticket.Properties.ExpiresUtc ?? now + DefaultLifetime;
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LatchkeyDbContext>();
        // A session ended meanwhile (signed out from elsewhere) stays ended: only an existing row is renewed.
        await LastUseStamp.StampAsync(db, () => db.AccountSessions.Where(s => s.Id == id)
            .ExecuteUpdateAsync(s => s.SetProperty(x => x.Ticket, ticketBytes).SetProperty(x => x.ExpiresAt, expires).SetProperty(x => x.LastSeenAt, now),
                cancellationToken));
    }

    public Task<AuthenticationTicket?> RetrieveAsync(string key) => RetrieveAsync(key, null!, CancellationToken.None);

    public Task<AuthenticationTicket?> RetrieveAsync(string key, CancellationToken cancellationToken) => RetrieveAsync(key, null!, cancellationToken);

    public async Task<AuthenticationTicket?> RetrieveAsync(string key, HttpContext httpContext, CancellationToken cancellationToken)
    {
        var id = IdOf(key);
        var now = time.GetUtcNow();
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LatchkeyDbContext>();
        var session = await db.AccountSessions.AsNoTracking()
            .Where(s => s.Id == id)
            .Select(s => new { s.Ticket, s.ExpiresAt, s.LastSeenAt, s.IpAddress })
            .FirstOrDefaultAsync(cancellationToken);
        if (session is null || session.ExpiresAt <= now)
        {
            return null;
        }
        var ticket = Unprotect(session.Ticket);
        if (ticket is null)
        {
            return null;
        }
        // The session list shows when and from where each browser was last seen; a minute's precision is enough.
        var address = Truncate(httpContext?.Connection.RemoteIpAddress?.ToString(), 64) ?? session.IpAddress;
        if (now - session.LastSeenAt >= LastSeenGranularity || address != session.IpAddress)
        {
            await LastUseStamp.StampAsync(db, () => db.AccountSessions.Where(s => s.Id == id)
                .ExecuteUpdateAsync(s => s.SetProperty(x => x.LastSeenAt, now).SetProperty(x => x.IpAddress, address), cancellationToken));
        }
        return ticket;
    }

    public Task RemoveAsync(string key) => RemoveAsync(key, null!, CancellationToken.None);

    public Task RemoveAsync(string key, CancellationToken cancellationToken) => RemoveAsync(key, null!, cancellationToken);

    public async Task RemoveAsync(string key, HttpContext httpContext, CancellationToken cancellationToken)
    {
        var id = IdOf(key);
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LatchkeyDbContext>();
        await db.AccountSessions.Where(s => s.Id == id).ExecuteDeleteAsync(cancellationToken);
    }

    private static void Name(AuthenticationTicket ticket, string sessionId)
    {
        if (ticket.Principal.HasClaim(c => c.Type == SessionClaim))
        {
            return;
        }
        ticket.Principal.Identities.First().AddClaim(new Claim(SessionClaim, sessionId));
    }

    private byte[] Protect(AuthenticationTicket ticket) => _protector.Protect(TicketSerializer.Default.Serialize(ticket));

    private AuthenticationTicket? Unprotect(byte[] protectedTicket)
    {
        try
        {
            return TicketSerializer.Default.Deserialize(_protector.Unprotect(protectedTicket));
        }
        catch (CryptographicException)
        {
            // A key ring that lost the key this ticket was encrypted with: the session is over, not an error.
            return null;
        }
    }

    private static string OpaqueKey() => System.Buffers.Text.Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));

    private static string? Truncate(string? value, int length) =>
        string.IsNullOrEmpty(value) ? null : value.Length <= length ? value : value[..length];
}

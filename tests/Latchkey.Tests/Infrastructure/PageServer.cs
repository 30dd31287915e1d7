using System.Collections.Concurrent;
using Latchkey.Features.Accounts;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Latchkey.Tests.Infrastructure;

/// <summary>A SQLite server for the page tests, whose account e-mails land in <see cref="Emails"/>.</summary>
public sealed class PageServer : SqliteServer
{
    public CapturedEmails Emails { get; } = new();

    protected override void ConfigureServer(WebApplicationBuilder builder) =>
        builder.Services.AddSingleton<IAccountEmailSender>(Emails);
}

public sealed class CapturedEmails : IAccountEmailSender
{
    private readonly ConcurrentQueue<AccountEmail> _sent = new();

    public IReadOnlyList<AccountEmail> To(string address) => [.. _sent.Where(e => e.To == address)];

    public Task SendAsync(AccountEmail email, CancellationToken cancellationToken)
    {
        _sent.Enqueue(email);
        return Task.CompletedTask;
    }
}

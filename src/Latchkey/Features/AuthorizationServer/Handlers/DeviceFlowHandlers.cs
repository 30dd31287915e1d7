using System.Collections.Concurrent;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Latchkey.Features.AuthorizationServer.Handlers;

// The device authorization grant (RFC 8628) beyond what OpenIddict does: the polling interval and
// slow_down, and user codes typed in lower case.

/// <summary>Device authorization answers say how often to poll (RFC 8628 §3.2: <c>interval</c>), which OpenIddict leaves out.</summary>
internal sealed class AttachDevicePollingInterval : IOpenIddictServerHandler<HandleDeviceAuthorizationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Singleton<HandleDeviceAuthorizationRequestContext, AttachDevicePollingInterval>(
        HandlerDescriptors.After(OpenIddictServerHandlers.Device.HandleDeviceAuthorizationRequest.Descriptor));

    public ValueTask HandleAsync(HandleDeviceAuthorizationRequestContext context)
    {
        context.Parameters[Parameters.Interval] = (long)DevicePolling.IntervalSeconds;
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// A device that polls before its interval is up gets <c>slow_down</c>, and its interval grows by
/// five seconds for this and every later poll (RFC 8628 §3.5). Runs before OpenIddict looks at the
/// device code's status, so that a fast poller learns nothing else.
/// </summary>
internal sealed class SlowDownFastPolling(DevicePolling polling) : IOpenIddictServerHandler<ValidateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Singleton<ValidateTokenContext, SlowDownFastPolling>(
        HandlerDescriptors.Before(OpenIddictServerHandlers.Protection.ValidateTokenEntry.Descriptor));

    public ValueTask HandleAsync(ValidateTokenContext context)
    {
        if (context.EndpointType == OpenIddictServerEndpointType.Token && context.Request?.IsDeviceCodeGrantType() == true
            && context.ValidTokenTypes.Contains(TokenTypeIdentifiers.Private.DeviceCode)
            && context.TokenId is { Length: > 0 } deviceCodeId && !polling.MayPoll(deviceCodeId))
        {
            context.Reject(Errors.SlowDown, "Polling too often: wait the interval between requests, five seconds longer from now on.");
        }
        return ValueTask.CompletedTask;
    }
}

/// <summary>A user code typed in lower case is the same code (OpenIddict compares it as written).</summary>
internal sealed class AcceptUserCodesInAnyCase : IOpenIddictServerHandler<ExtractEndUserVerificationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Singleton<ExtractEndUserVerificationRequestContext, AcceptUserCodesInAnyCase>(
        HandlerDescriptors.After(OpenIddict.Server.AspNetCore.OpenIddictServerAspNetCoreHandlers.ExtractPostRequest<ExtractEndUserVerificationRequestContext>.Descriptor, 600));

    public ValueTask HandleAsync(ExtractEndUserVerificationRequestContext context)
    {
        if (context.Request?.UserCode is { Length: > 0 } code)
        {
            context.Request.UserCode = code.ToUpperInvariant();
        }
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// When each device code was last polled, and its interval: held in memory, on the node that
/// answered (with several nodes a device polling through a balancer may be let through more often).
/// </summary>
internal sealed class DevicePolling(TimeProvider time)
{
    public const int IntervalSeconds = 5;

    private static readonly TimeSpan Forget = TimeSpan.FromMinutes(30);

    private readonly ConcurrentDictionary<string, (DateTimeOffset Last, int Interval)> _polls = new(StringComparer.Ordinal);
    private DateTimeOffset _swept;

    /// <summary>Records a poll; false when it came before the device's interval was up.</summary>
    public bool MayPoll(string deviceCodeId)
    {
        var now = time.GetUtcNow();
        Sweep(now);
        var allowed = true;
        _polls.AddOrUpdate(deviceCodeId, (now, IntervalSeconds), (_, previous) =>
        {
            allowed = now - previous.Last >= TimeSpan.FromSeconds(previous.Interval);
            return (now, allowed ? previous.Interval : previous.Interval + 5);
        });
        return allowed;
    }

    private void Sweep(DateTimeOffset now)
    {
        if (now - _swept < Forget)
        {
            return;
        }
        _swept = now;
        foreach (var (id, poll) in _polls)
        {
            if (now - poll.Last > Forget)
            {
                _polls.TryRemove(id, out _);
            }
        }
    }
}

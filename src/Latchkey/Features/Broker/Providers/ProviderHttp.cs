using Latchkey.Common;
using Microsoft.Extensions.Options;

namespace Latchkey.Features.Broker.Providers;

/// <summary>The HTTP client for providers: behind the SSRF guard unless <c>Broker:AllowPrivateNetworks</c> is on.</summary>
public static class ProviderHttpSetup
{
    public const string ClientName = "latchkey-providers";

    public static IServiceCollection AddProviderHttpClient(this IServiceCollection services)
    {
        services.AddOutboundAddressGuard();
        services.AddHttpClient(ClientName)
            .ConfigurePrimaryHttpMessageHandler(provider => provider.GetRequiredService<OutboundAddressGuard>()
                .CreateHandler(provider.GetRequiredService<IOptions<BrokerOptions>>().Value.AllowPrivateNetworks, "Broker:AllowPrivateNetworks"))
            .ConfigureHttpClient((provider, client) =>
            {
                client.Timeout = TimeSpan.FromSeconds(provider.GetRequiredService<IOptions<BrokerOptions>>().Value.ProviderTimeoutSeconds);
                client.DefaultRequestHeaders.UserAgent.ParseAdd("Latchkey/1.0");
            });
        services.AddHttpClient(ProviderApi.ClientName)
            .ConfigurePrimaryHttpMessageHandler(provider => provider.GetRequiredService<OutboundAddressGuard>()
                .CreateHandler(provider.GetRequiredService<IOptions<BrokerOptions>>().Value.AllowPrivateNetworks, "Broker:AllowPrivateNetworks"))
            .ConfigureHttpClient(client =>
            {
                client.Timeout = Timeout.InfiniteTimeSpan;
                client.DefaultRequestHeaders.UserAgent.ParseAdd("Latchkey/1.0");
            });
        services.AddSingleton<ProviderApi>();
        return services;
    }
}

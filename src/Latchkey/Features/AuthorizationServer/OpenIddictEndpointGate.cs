using System.Collections.Frozen;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;

namespace Latchkey.Features.AuthorizationServer;

/// <summary>
/// OpenIddict's server takes part in every request as an authentication request handler: on each
/// one it opens a transaction and runs its request pipeline to learn whether the path is one of
/// its endpoints. On a broker read that was an eighth of the CPU, for requests it never handles.
/// Here it is asked only about requests whose path is one of its endpoints' paths (compared as
/// OpenIddict does: ignoring case and a trailing slash); everything else goes straight on.
/// OpenIddict still decides for itself what the request is.
/// </summary>
internal sealed class OpenIddictEndpointGate
{
    // Read on the first request: OpenIddict's options load the signing keys, which needs a migrated database.
    private readonly Lazy<FrozenSet<string>> _paths;

    public OpenIddictEndpointGate(IOptions<OpenIddictServerOptions> options) =>
        _paths = new Lazy<FrozenSet<string>>(() => EndpointPaths(options.Value));

    private static FrozenSet<string> EndpointPaths(OpenIddictServerOptions options) =>
        // Every *EndpointUris list, so that an endpoint a later OpenIddict adds is not missed.
        typeof(OpenIddictServerOptions).GetProperties()
            .Where(p => p.Name.EndsWith("EndpointUris", StringComparison.Ordinal) && typeof(IEnumerable<Uri>).IsAssignableFrom(p.PropertyType))
            .SelectMany(p => (IEnumerable<Uri>?)p.GetValue(options) ?? [])
            .Select(uri => Normalize(uri.IsAbsoluteUri ? uri.AbsolutePath : "/" + uri.OriginalString.TrimStart('/')))
            .ToFrozenSet(StringComparer.OrdinalIgnoreCase);

    /// <summary>True when OpenIddict may see the request as one of its endpoints (relative to the path base, or with it).</summary>
    public bool MayBeEndpoint(HttpRequest request) =>
        _paths.Value.Contains(Normalize(request.Path.Value ?? "/")) ||
        (request.PathBase.HasValue && _paths.Value.Contains(Normalize(request.PathBase.Add(request.Path).Value ?? "/")));

    private static string Normalize(string path) => path.Length > 1 && path[^1] == '/' ? path[..^1] : path;
}

/// <summary>The authentication middleware no longer offers every request to OpenIddict's server (see <see cref="OpenIddictEndpointGate"/>).</summary>
internal sealed class SchemesWithoutOpenIddictRequests(IOptions<AuthenticationOptions> options) : AuthenticationSchemeProvider(options)
{
    // The base class's answer and its filtered copy in one object, replaced as one reference
    // (requests read it concurrently).
    private sealed record Filtering(IEnumerable<AuthenticationScheme> Source, AuthenticationScheme[] Filtered);

    private Filtering? _filtered;

    public override async Task<IEnumerable<AuthenticationScheme>> GetRequestHandlerSchemesAsync()
    {
        var all = await base.GetRequestHandlerSchemesAsync();
        // The base class answers the same array until a scheme is added or removed.
        if (_filtered is not { } filtered || !ReferenceEquals(filtered.Source, all))
        {
            filtered = new Filtering(all, all.Where(s => s.Name != OpenIddictServerAspNetCoreDefaults.AuthenticationScheme).ToArray());
            _filtered = filtered;
        }
        return filtered.Filtered;
    }
}

internal static class OpenIddictEndpointGateSetup
{
    public static IServiceCollection AddOpenIddictEndpointGate(this IServiceCollection services)
    {
        services.AddSingleton<OpenIddictEndpointGate>();
        services.Replace(ServiceDescriptor.Singleton<IAuthenticationSchemeProvider, SchemesWithoutOpenIddictRequests>());
        return services;
    }

    /// <summary>Where the authentication middleware used to hand requests to OpenIddict: just before it.</summary>
    public static WebApplication UseOpenIddictEndpoints(this WebApplication app)
    {
        var gate = app.Services.GetRequiredService<OpenIddictEndpointGate>();
        app.Use(async (context, next) =>
        {
            if (gate.MayBeEndpoint(context.Request) &&
                await context.RequestServices.GetRequiredService<IAuthenticationHandlerProvider>()
                    .GetHandlerAsync(context, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme) is IAuthenticationRequestHandler handler &&
                await handler.HandleRequestAsync())
            {
                return;
            }
            await next(context);
        });
        return app;
    }
}

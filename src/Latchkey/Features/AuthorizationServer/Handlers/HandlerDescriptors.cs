using OpenIddict.Server;

namespace Latchkey.Features.AuthorizationServer.Handlers;

/// <summary>
/// How Latchkey's OpenIddict handlers join the pipeline: each is custom, scoped or singleton, and
/// runs just before or after the built-in step it changes (OpenIddict spaces its own steps 1,000
/// apart, so ±500 never collides with one of them).
/// </summary>
internal static class HandlerDescriptors
{
    public static int After(OpenIddictServerHandlerDescriptor step, int offset = 500) => step.Order + offset;

    public static int Before(OpenIddictServerHandlerDescriptor step, int offset = 500) => step.Order - offset;

    /// <summary>A handler without per-request dependencies, made once.</summary>
    public static OpenIddictServerHandlerDescriptor Singleton<TContext, THandler>(int order, Action<OpenIddictServerHandlerDescriptor.Builder<TContext>>? filters = null)
        where TContext : OpenIddictServerEvents.BaseContext
        where THandler : class, IOpenIddictServerHandler<TContext> =>
        Build(order, filters, builder => builder.UseSingletonHandler<THandler>());

    /// <summary>A handler that uses scoped services (the database, the managers), made per request.</summary>
    public static OpenIddictServerHandlerDescriptor Scoped<TContext, THandler>(int order, Action<OpenIddictServerHandlerDescriptor.Builder<TContext>>? filters = null)
        where TContext : OpenIddictServerEvents.BaseContext
        where THandler : class, IOpenIddictServerHandler<TContext> =>
        Build(order, filters, builder => builder.UseScopedHandler<THandler>());

    private static OpenIddictServerHandlerDescriptor Build<TContext>(int order, Action<OpenIddictServerHandlerDescriptor.Builder<TContext>>? filters,
        Func<OpenIddictServerHandlerDescriptor.Builder<TContext>, OpenIddictServerHandlerDescriptor.Builder<TContext>> handler)
        where TContext : OpenIddictServerEvents.BaseContext
    {
        var builder = OpenIddictServerHandlerDescriptor.CreateBuilder<TContext>();
        filters?.Invoke(builder);
        return handler(builder).SetOrder(order).SetType(OpenIddictServerHandlerType.Custom).Build();
    }
}

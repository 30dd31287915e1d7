using System.Text.Json;
using Latchkey.Common;
using Microsoft.AspNetCore;
using Microsoft.Extensions.Primitives;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Latchkey.Features.AuthorizationServer.Handlers;

// Requests as Latchkey accepts them: form-encoded or JSON, and never a 500 for a body that cannot be read.

/// <summary>
/// Token, introspection and revocation requests may be form-encoded (RFC 6749) or JSON (the
/// reference system's shape). Takes the place of OpenIddict's form-only extraction.
/// </summary>
internal sealed class ExtractFormOrJsonRequest<TContext> : IOpenIddictServerHandler<TContext>
    where TContext : BaseValidatingContext
{
    public static OpenIddictServerHandlerDescriptor Descriptor(int order) => HandlerDescriptors.Singleton<TContext, ExtractFormOrJsonRequest<TContext>>(
        order, filters => filters.AddFilter<OpenIddictServerAspNetCoreHandlerFilters.RequireHttpRequest>());

    public async ValueTask HandleAsync(TContext context)
    {
        var request = context.Transaction.GetHttpRequest() ?? throw new InvalidOperationException("No HTTP request.");
        if (!HttpMethods.IsPost(request.Method))
        {
            context.Reject(Errors.InvalidRequest, "Use POST.");
            return;
        }
        // Parsed, not prefix-matched: a repeated Content-Type header arrives joined ("a, b") and is neither.
        var contentType = Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(request.ContentType, out var mediaType)
            ? mediaType.MediaType.Value ?? ""
            : "";
        if (contentType.Equals("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase))
        {
            if (await RequestForms.TryReadAsync(request, context.CancellationToken) is { } form)
            {
                context.Transaction.Request = new OpenIddictRequest(form);
            }
            else
            {
                context.Reject(Errors.InvalidRequest, RequestForms.UnreadableDescription);
            }
            return;
        }
        if (!contentType.Equals("application/json", StringComparison.OrdinalIgnoreCase))
        {
            context.Reject(Errors.InvalidRequest, "Send the parameters form-encoded (application/x-www-form-urlencoded) or as a JSON object (application/json).");
            return;
        }

        try
        {
            using var document = await JsonDocument.ParseAsync(request.Body, cancellationToken: context.CancellationToken);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                context.Reject(Errors.InvalidRequest, "The JSON body must be an object of parameters.");
                return;
            }
            var parameters = new List<KeyValuePair<string, StringValues>>();
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Value.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
                {
                    context.Reject(Errors.InvalidRequest, $"The parameter {InputEcho.Quote(property.Name)} must be a string.");
                    return;
                }
                if (property.Value.GetString() is { } value && value.Contains('\0'))
                {
                    context.Reject(Errors.InvalidRequest, $"The parameter {InputEcho.Quote(property.Name)} contains a NUL character.");
                    return;
                }
                parameters.Add(new(property.Name, property.Value.GetString()));
            }
            context.Transaction.Request = new OpenIddictRequest(parameters);
        }
        catch (JsonException)
        {
            context.Reject(Errors.InvalidRequest, "The JSON body is malformed.");
        }
    }
}

/// <summary>
/// Authorization, userinfo, pushed authorization, device and verification requests may be form
/// posts, which OpenIddict reads itself; this runs
/// first, so that a form it cannot read (or a query with a NUL) is an OAuth error rather than an
/// exception. A form read here is kept on the request, and OpenIddict's extraction uses it.
/// </summary>
internal sealed class RejectUnreadableForm<TContext> : IOpenIddictServerHandler<TContext>
    where TContext : BaseValidatingContext
{
    public static OpenIddictServerHandlerDescriptor Descriptor(int order) => HandlerDescriptors.Singleton<TContext, RejectUnreadableForm<TContext>>(
        order, filters => filters.AddFilter<OpenIddictServerAspNetCoreHandlerFilters.RequireHttpRequest>());

    public async ValueTask HandleAsync(TContext context)
    {
        var request = context.Transaction.GetHttpRequest() ?? throw new InvalidOperationException("No HTTP request.");
        // A content type that is not one media type ("a, b" from a repeated header) would pass
        // OpenIddict's prefix check and then make the form reader throw.
        if (HttpMethods.IsPost(request.Method)
            && ((!string.IsNullOrEmpty(request.ContentType) && !Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(request.ContentType, out _))
                || (request.HasFormContentType && await RequestForms.TryReadAsync(request, context.CancellationToken) is null)))
        {
            context.Reject(Errors.InvalidRequest, RequestForms.UnreadableDescription);
            return;
        }
        // A query string may carry an escaped NUL (forms may not); PostgreSQL cannot compare text with one.
        foreach (var (name, values) in request.Query)
        {
            if (values.Any(v => v?.Contains('\0') == true))
            {
                context.Reject(Errors.InvalidRequest, $"The parameter {InputEcho.Quote(name)} contains a NUL character.");
                return;
            }
        }
    }
}

/// <summary>
/// A parameter sent twice is <c>invalid_request</c> that says so (RFC 6749 §3.1, §3.2): OpenIddict
/// reads a repeated parameter as absent and would answer that it is missing. <c>resource</c> and
/// <c>audience</c> may be repeated (RFC 8707, RFC 8693).
/// </summary>
internal sealed class RejectRepeatedParameters<TContext> : IOpenIddictServerHandler<TContext>
    where TContext : BaseValidatingContext
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = HandlerDescriptors.Singleton<TContext, RejectRepeatedParameters<TContext>>(
        HandlerDescriptors.After(OpenIddictServerAspNetCoreHandlers.ExtractPostRequest<TContext>.Descriptor));

    public ValueTask HandleAsync(TContext context)
    {
        if (context.Transaction.Request is not { } request)
        {
            return ValueTask.CompletedTask;
        }
        foreach (var (name, value) in request.GetParameters())
        {
            if (value.Count > 1 && name is not (Parameters.Resource or Parameters.Audience))
            {
                context.Reject(Errors.InvalidRequest, $"The parameter {InputEcho.Quote(name)} was sent more than once; send it once.");
                break;
            }
        }
        return ValueTask.CompletedTask;
    }
}

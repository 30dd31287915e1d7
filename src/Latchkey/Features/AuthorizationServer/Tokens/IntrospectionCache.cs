using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Latchkey.Cluster;
using Latchkey.Common;
using Latchkey.Features.AuthorizationServer.Handlers;
using Latchkey.Features.Telemetry;
using Microsoft.AspNetCore;
using Microsoft.Extensions.Primitives;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Latchkey.Features.AuthorizationServer.Tokens;

/// <summary>An active introspection answer OpenIddict gave, kept to answer the same question again.</summary>
public sealed record IntrospectionAnswer(byte[] Json, DateTimeOffset ExpiresAt);

/// <summary>
/// Resource servers introspect the same token again and again. OpenIddict answers each question
/// first (client authentication, token validation, the whole protocol); an active answer is then
/// remembered under the exact question: client id, client secret and token, hashed together.
/// The same question is answered from memory until the token expires or anything in the OAuth
/// scope changes (a revocation, a disabled app, a rotated secret), whichever comes first.
/// Anything else (other content types, JSON bodies, unknown tokens, errors) goes to OpenIddict.
/// </summary>
public static class IntrospectionCache
{
    private const string QuestionItem = "latchkey.introspection.question";

    /// <summary>A plain question's cache key, and the OAuth revision noted before anything read the database.</summary>
    private sealed record Question(string Key, long Revision);

    /// <summary>Answers repeated introspection questions before OpenIddict; must run before authentication.</summary>
    public static WebApplication UseIntrospectionCache(this WebApplication app)
    {
        app.UseWhen(context => HttpMethods.IsPost(context.Request.Method)
                && context.Request.Path.Equals(AuthorizationServerSetup.IntrospectPath, StringComparison.OrdinalIgnoreCase)
                && context.Request.HasFormContentType,
            branch => branch.Use(AnswerFromCacheAsync));
        return app;
    }

    private static async Task AnswerFromCacheAsync(HttpContext context, RequestDelegate next)
    {
        var cache = context.RequestServices.GetRequiredService<SnapshotCache<IntrospectionAnswer>>();
        // The revision is noted before anything reads the database, so an answer computed now is stored under it.
        var revision = cache.Revision;
        // An unreadable form goes on to OpenIddict, which answers invalid_request.
        if (await RequestForms.TryReadAsync(context.Request, context.RequestAborted) is not { } form
            || Key(context.Request.Headers.Authorization, form) is not { } key)
        {
            await next(context);
            return;
        }
        if (cache.TryGet(key.Hash, out var answer)
            && answer.ExpiresAt > context.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow())
        {
            // Only active answers are remembered.
            context.RequestServices.GetRequiredService<LatchkeyMetrics>().Introspected(key.ClientId, active: true);
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = "application/json;charset=UTF-8";
            context.Response.ContentLength = answer.Json.Length;
            await context.Response.Body.WriteAsync(answer.Json, context.RequestAborted);
            return;
        }
        context.Items[QuestionItem] = new Question(key.Hash, revision);
        await next(context);
    }

    /// <summary>
    /// The cache key of a plain introspection question (one token of Latchkey's access-token format,
    /// no hint or the access-token hint, one way of client authentication), or null for anything else.
    /// </summary>
    private static CacheKey? Key(StringValues authorization, IFormCollection form)
    {
        if (form["token"] is not { Count: 1 } tokens || tokens[0] is not { } token || !TokenFormats.AccessToken.IsWellFormed(token))
        {
            return null;
        }
        if (form.TryGetValue("token_type_hint", out var hint) && (hint.Count != 1 || hint[0] != TokenTypeHints.AccessToken))
        {
            return null;
        }
        string? clientId, secret;
        var inForm = form.ContainsKey(Parameters.ClientId) || form.ContainsKey(Parameters.ClientSecret);
        if (authorization.Count == 1 && !inForm)
        {
            (clientId, secret) = BasicClientCredentials.Parse(authorization[0]);
        }
        else if (authorization.Count == 0 && form[Parameters.ClientId] is { Count: 1 } ids && form[Parameters.ClientSecret] is { Count: 1 } secrets)
        {
            (clientId, secret) = (ids[0], secrets[0]);
        }
        else
        {
            return null;
        }
        return clientId is null || secret is null ? null : new CacheKey(Hash(clientId, secret, token), clientId);
    }

    /// <summary>The cache key of a question, and the client that asked (for the metrics).</summary>
    private sealed record CacheKey(string Hash, string ClientId);

    private static string Hash(string clientId, string secret, string token)
    {
        // Lengths first, so no two different triples hash alike.
        var text = $"{clientId.Length}:{clientId}{secret.Length}:{secret}{token}";
        return Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
    }

    /// <summary>Counts the answers OpenIddict gives (the remembered ones are counted where they are served).</summary>
    internal sealed class CountAnswer(LatchkeyMetrics metrics) : IOpenIddictServerHandler<ApplyIntrospectionResponseContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ApplyIntrospectionResponseContext>()
            .UseSingletonHandler<CountAnswer>()
            .SetOrder(RememberAnswer.Descriptor.Order + 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public ValueTask HandleAsync(ApplyIntrospectionResponseContext context)
        {
            if (string.IsNullOrEmpty(context.Response.Error))
            {
                metrics.Introspected(context.Request?.ClientId, context.Response[Claims.Active] is { } active && (bool)active);
            }
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>Remembers OpenIddict's active answers to plain questions from confidential clients.</summary>
    internal sealed class RememberAnswer(SnapshotCache<IntrospectionAnswer> cache) : IOpenIddictServerHandler<ApplyIntrospectionResponseContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ApplyIntrospectionResponseContext>()
            .AddFilter<OpenIddictServerAspNetCoreHandlerFilters.RequireHttpRequest>()
            .UseSingletonHandler<RememberAnswer>()
            // After every handler that shapes the answer, before it is written.
            .SetOrder(AttachReferenceIntrospectionFields.Descriptor.Order + 100)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public ValueTask HandleAsync(ApplyIntrospectionResponseContext context)
        {
            var response = context.Response;
            if (context.Transaction.GetHttpRequest()?.HttpContext.Items[QuestionItem] is not Question question
                || !string.IsNullOrEmpty(response.Error)
                || response[Claims.Active] is not { } active || !(bool)active
                || response[Claims.ExpiresAt] is not { } exp || (long?)exp is not { } seconds)
            {
                return ValueTask.CompletedTask;
            }
            var json = JsonSerializer.SerializeToUtf8Bytes(response);
            cache.Set(question.Key, new IntrospectionAnswer(json, DateTimeOffset.FromUnixTimeSeconds(seconds)), question.Revision);
            return ValueTask.CompletedTask;
        }
    }
}

using Latchkey.Features.ExternalApi;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Latchkey.Features.ApiDocs;

/// <summary>
/// Describes how each operation authenticates, so that the reference at <c>/docs</c> can send
/// the right header: API key or bearer (with the scope needed) for the external API, the
/// session cookie for the account's own JSON API.
/// </summary>
internal static class SecuritySchemeTransformers
{
    private const string ApiKey = "ApiKey";
    private const string Bearer = "Bearer";
    private const string Session = "Session";

    public static Task AddSchemes(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        document.Components ??= new OpenApiComponents();
        document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
        document.Components.SecuritySchemes[ApiKey] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.ApiKey,
            In = ParameterLocation.Header,
            Name = ExternalApiAuthenticationHandler.ApiKeyHeader,
            Description = "An API key (lk_ak_...). It may also be sent as a bearer token.",
        };
        document.Components.SecuritySchemes[Bearer] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "bearer",
            Description = "An OAuth access token issued by Latchkey, or an API key.",
        };
        document.Components.SecuritySchemes[Session] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.ApiKey,
            In = ParameterLocation.Cookie,
            Name = "latchkey.session",
            Description = "The browser session of a signed-in user (sign in at /account/sign-in).",
        };
        return Task.CompletedTask;
    }

    public static Task AddRequirements(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        var policies = context.Description.ActionDescriptor.EndpointMetadata.OfType<AuthorizationPolicy>().ToList();
        var scopes = policies.SelectMany(p => p.Requirements.OfType<ScopeRequirement>()).Select(r => r.Scope).ToList();
        var document = context.Document;
        if (policies.Any(p => p.AuthenticationSchemes.Contains(ExternalApiAuthenticationHandler.SchemeName)))
        {
            operation.Security =
            [
                new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(ApiKey, document)] = scopes },
                new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(Bearer, document)] = scopes },
            ];
            operation.Description = $"{operation.Description} Required scope: {string.Join(", ", scopes)}.".Trim();
        }
        else if (policies.Any(p => p.AuthenticationSchemes.Contains(IdentityConstants.ApplicationScheme)))
        {
            operation.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(Session, document)] = [] }];
        }
        return Task.CompletedTask;
    }
}

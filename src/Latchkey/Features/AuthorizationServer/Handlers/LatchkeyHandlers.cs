using Latchkey.Features.AuthorizationServer.Tokens;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Latchkey.Features.AuthorizationServer.Handlers;

/// <summary>Every handler Latchkey adds to OpenIddict's server pipeline, or puts in place of a built-in one, by concern.</summary>
internal static class LatchkeyHandlers
{
    public static OpenIddictServerBuilder AddLatchkeyHandlers(this OpenIddictServerBuilder server)
    {
        // Token storage (TokenStorageHandlers): one insert per access or refresh token, in
        // Latchkey's prefixed format, read back from its row; malformed ones refused before a look-up; introspection
        // answers kept for the cache in front of the endpoint.
        Replace(server, OpenIddictServerHandlers.Protection.CreateTokenEntry.Descriptor, CreateTokenEntryOnce.Descriptor);
        // OpenIddict's look-up stays, with one more filter (removing and re-adding it would remove both: removal goes by handler type).
        server.Configure(options =>
        {
            var index = options.Handlers.FindIndex(handler => handler.ServiceDescriptor.ServiceType == typeof(OpenIddictServerHandlers.Protection.ValidateReferenceTokenIdentifier));
            options.Handlers[index] = RestoreStoredTokenPrincipal.BuiltInLookup;
        });
        server.Services.AddSingleton<RestoreStoredTokenPrincipal.RequireNoPrincipalYet>();
        server.AddEventHandler(AttachPrefixedReferenceIdentifier.Descriptor)
            .AddEventHandler(RestoreStoredTokenPrincipal.Descriptor)
            .AddEventHandler(RejectMalformedPrefixedTokens.Descriptor)
            .AddEventHandler(IntrospectionCache.RememberAnswer.Descriptor)
            .AddEventHandler(IntrospectionCache.CountAnswer.Descriptor);

        // Request parsing (RequestParsingHandlers): token, introspection and revocation requests
        // form-encoded or JSON; an unreadable form anywhere else is invalid_request.
        Replace(server, OpenIddictServerAspNetCoreHandlers.ExtractPostRequest<ExtractTokenRequestContext>.Descriptor,
            ExtractFormOrJsonRequest<ExtractTokenRequestContext>.Descriptor(
                OpenIddictServerAspNetCoreHandlers.ExtractPostRequest<ExtractTokenRequestContext>.Descriptor.Order));
        Replace(server, OpenIddictServerAspNetCoreHandlers.ExtractGetOrPostRequest<ExtractIntrospectionRequestContext>.Descriptor,
            ExtractFormOrJsonRequest<ExtractIntrospectionRequestContext>.Descriptor(
                OpenIddictServerAspNetCoreHandlers.ExtractGetOrPostRequest<ExtractIntrospectionRequestContext>.Descriptor.Order));
        Replace(server, OpenIddictServerAspNetCoreHandlers.ExtractPostRequest<ExtractRevocationRequestContext>.Descriptor,
            ExtractFormOrJsonRequest<ExtractRevocationRequestContext>.Descriptor(
                OpenIddictServerAspNetCoreHandlers.ExtractPostRequest<ExtractRevocationRequestContext>.Descriptor.Order));
        server.AddEventHandler(RejectUnreadableForm<ExtractAuthorizationRequestContext>.Descriptor(
                OpenIddictServerAspNetCoreHandlers.ExtractGetOrPostRequest<ExtractAuthorizationRequestContext>.Descriptor.Order - 1))
            .AddEventHandler(RejectUnreadableForm<ExtractUserInfoRequestContext>.Descriptor(
                OpenIddictServerAspNetCoreHandlers.ExtractGetOrPostRequest<ExtractUserInfoRequestContext>.Descriptor.Order - 1))
            .AddEventHandler(RejectUnreadableForm<ExtractPushedAuthorizationRequestContext>.Descriptor(
                OpenIddictServerAspNetCoreHandlers.ExtractPostRequest<ExtractPushedAuthorizationRequestContext>.Descriptor.Order - 1))
            .AddEventHandler(RejectUnreadableForm<ExtractDeviceAuthorizationRequestContext>.Descriptor(
                OpenIddictServerAspNetCoreHandlers.ExtractPostRequest<ExtractDeviceAuthorizationRequestContext>.Descriptor.Order - 1))
            .AddEventHandler(RejectUnreadableForm<ExtractEndUserVerificationRequestContext>.Descriptor(
                OpenIddictServerAspNetCoreHandlers.ExtractGetOrPostRequest<ExtractEndUserVerificationRequestContext>.Descriptor.Order - 1));

        // A sign-in's chain (ChainRevocationHandlers): revoking its refresh token, or a reused code or
        // refresh token, ends that chain and nothing else.
        server.AddEventHandler(RevokeChainOfRevokedRefreshToken.Descriptor)
            .AddEventHandler(RevokeChainOfReusedToken.Descriptor);

        // The device flow (DeviceFlowHandlers): the polling interval, slow_down, user codes in any case.
        server.AddEventHandler(AttachDevicePollingInterval.Descriptor)
            .AddEventHandler(SlowDownFastPolling.Descriptor)
            .AddEventHandler(AcceptUserCodesInAnyCase.Descriptor);

        // Every parameter once (RequestParsingHandlers).
        server.AddEventHandler(RejectRepeatedParameters<ExtractAuthorizationRequestContext>.Descriptor)
            .AddEventHandler(RejectRepeatedParameters<ExtractTokenRequestContext>.Descriptor)
            .AddEventHandler(RejectRepeatedParameters<ExtractIntrospectionRequestContext>.Descriptor)
            .AddEventHandler(RejectRepeatedParameters<ExtractRevocationRequestContext>.Descriptor)
            .AddEventHandler(RejectRepeatedParameters<ExtractUserInfoRequestContext>.Descriptor)
            .AddEventHandler(RejectRepeatedParameters<ExtractPushedAuthorizationRequestContext>.Descriptor)
            .AddEventHandler(RejectRepeatedParameters<ExtractDeviceAuthorizationRequestContext>.Descriptor)
            .AddEventHandler(RejectRepeatedParameters<ExtractEndUserVerificationRequestContext>.Descriptor);

        // Client policy (ClientPolicyHandlers): clients named by a metadata document, disabled apps, the scopes and grants an app may use,
        // token ownership, scope escalation.
        server.AddEventHandler(RejectScopesNotPermitted<ValidateAuthorizationRequestContext>.Descriptor(
                OpenIddictServerHandlers.Authentication.ValidateScopePermissions.Descriptor))
            .AddEventHandler(RejectScopesNotPermitted<ValidateTokenRequestContext>.Descriptor(
                OpenIddictServerHandlers.Exchange.ValidateScopePermissions.Descriptor))
            .AddEventHandler(RejectScopesNotPermitted<ValidatePushedAuthorizationRequestContext>.Descriptor(
                OpenIddictServerHandlers.Authentication.ValidatePushedScopePermissions.Descriptor))
            .AddEventHandler(RejectScopesNotPermitted<ValidateDeviceAuthorizationRequestContext>.Descriptor(
                OpenIddictServerHandlers.Device.ValidateScopePermissions.Descriptor))
            .AddEventHandler(RejectClientCredentialsOfPublicClients.Descriptor);
        server.AddEventHandler(ResolveClientMetadataDocument.Descriptor)
            .AddEventHandler(RejectDisabledClients.Descriptor)
            .AddEventHandler(RejectTokensOfDisabledClients.Descriptor)
            .AddEventHandler(RequireTokenOwnership.IntrospectionDescriptor)
            .AddEventHandler(RequireTokenOwnership.RevocationDescriptor)
            .AddEventHandler(AttachScopesForOwner.Descriptor)
            .AddEventHandler(RejectRefreshScopeEscalation.Descriptor);

        // Wire compatibility (WireCompatibilityHandlers): the granted scopes in every token response,
        // both response shapes, the registration endpoint in discovery.
        server.AddEventHandler(ReportGrantedScopes.Descriptor)
            .AddEventHandler(KeepOfflineAccessOutOfAccessTokens.Descriptor)
            .AddEventHandler(AttachReferenceTokenResponseFields.Descriptor)
            .AddEventHandler(AttachReferenceIntrospectionFields.Descriptor)
            .AddEventHandler(AttachRegistrationEndpoint.Descriptor)
            .AddEventHandler(AdvertisePublicClients.Descriptor)
            .AddEventHandler(AttachActorToIntrospection.Descriptor);

        // DPoP (DPoPHandlers): proofs where they arrive, tokens bound to the proven key, bound tokens
        // honoured only with a proof by that key, and the token type and algorithms said.
        server.AddEventHandler(ValidateDPoPProof<ExtractTokenRequestContext>.Descriptor(
                HandlerDescriptors.After(OpenIddictServerAspNetCoreHandlers.ExtractPostRequest<ExtractTokenRequestContext>.Descriptor)))
            .AddEventHandler(ValidateDPoPProof<ExtractPushedAuthorizationRequestContext>.Descriptor(
                HandlerDescriptors.After(OpenIddictServerAspNetCoreHandlers.ExtractPostRequest<ExtractPushedAuthorizationRequestContext>.Descriptor)))
            .AddEventHandler(ExtractDPoPAccessToken.Descriptor)
            .AddEventHandler(RejectMalformedDPoPKeyThumbprint<ValidateAuthorizationRequestContext>.Descriptor(
                HandlerDescriptors.After(OpenIddictServerHandlers.Authentication.ValidateClientRedirectUri.Descriptor)))
            .AddEventHandler(RejectMalformedDPoPKeyThumbprint<ValidatePushedAuthorizationRequestContext>.Descriptor(
                HandlerDescriptors.After(OpenIddictServerHandlers.Authentication.ValidatePushedClientRedirectUri.Descriptor)))
            .AddEventHandler(RequireProofForBoundTokens.Descriptor)
            .AddEventHandler(BindIssuedTokensToDPoPKey.Descriptor)
            .AddEventHandler(ReportDPoPTokenType.Descriptor)
            .AddEventHandler(ReportDPoPTokenTypeInIntrospection.Descriptor)
            .AddEventHandler(AdvertiseDPoP.Descriptor);

        // The account's security log (SecurityLogHandlers): tokens issued, revoked, and revoked for reuse.
        server.AddEventHandler(RecordIssuedTokens.Descriptor)
            .AddEventHandler(RecordRevokedTokens.Descriptor)
            .AddEventHandler(NotePresentedGrantToken.Descriptor)
            .AddEventHandler(RecordReuseRevocation.Descriptor);
        return server;
    }

    /// <summary>Puts <paramref name="ours"/> in the place of a built-in handler.</summary>
    private static void Replace(OpenIddictServerBuilder server, OpenIddictServerHandlerDescriptor builtIn, OpenIddictServerHandlerDescriptor ours) =>
        server.RemoveEventHandler(builtIn).AddEventHandler(ours);
}

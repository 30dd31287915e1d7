// The benchmark's peer: oidc-provider (the certified Node.js OpenID Connect / OAuth server) with
// one confidential client, the client-credentials grant, opaque access tokens and introspection,
// on its default in-memory adapter. Usage: node server.mjs <port>
import Provider from 'oidc-provider';

const port = Number(process.argv[2] ?? 3000);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'bench-client',
    client_secret: 'bench-client-secret-0123456789abcdef',
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  features: {
    clientCredentials: { enabled: true },
    // Like Latchkey, a client may introspect only its own tokens.
    introspection: { enabled: true, allowedPolicy: async (ctx, client, token) => token.clientId === client.clientId },
    devInteractions: { enabled: false },
  },
  scopes: ['api'],
  ttl: { ClientCredentials: 3600 },
});
// Quiet: the harness reads only the listening line.
provider.on('server_error', (ctx, error) => console.error('server_error', error));

provider.listen(port, '127.0.0.1', () => console.log(`peer listening on ${issuer}`));

// The benchmark's peer: oidc-provider (the certified Node.js OpenID Connect / OAuth server) with
// one confidential client, the client-credentials and refresh-token grants (refresh tokens
// rotated on every use, as Latchkey does), opaque access tokens and introspection, on its own
// in-memory adapter. Usage: node server.mjs <port>
//
// Besides oidc-provider's own routes it answers one bench-only route, on loopback like the rest:
// POST /bench/refresh-tokens?count=N makes N refresh tokens as the code flow would leave them (a
// grant of `offline_access api` for a user, and a refresh token of it), each through
// oidc-provider's own models, and answers them as a JSON array. The harness starts its refresh
// chains from them, since a real code flow here would need a sign-in interaction that the peer is
// not set up for.
import http from 'node:http';
import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';

const port = Number(process.argv[2] ?? 3000);
const issuer = `http://127.0.0.1:${port}`;
const clientId = 'bench-client';
const accountId = 'bench-user';

// oidc-provider's own in-memory adapter, as it ships (a store of two generations of 1,000 entries),
// except that refresh tokens and grants get a store of their own with room for 20,000 entries a
// generation: in the shared default store a refresh token that waits while some 400 other
// refreshes happen (behind a connection slow to open on a busy machine) is dropped, and its chain
// breaks. Each store keeps its own tokens' per-grant index, so revoking a grant still reaches all.
const defaultStore = new LRU({ maxSize: 1000 });
const refreshStore = new LRU({ maxSize: 20_000 });
const keptLonger = new Set(['RefreshToken', 'Grant']);

const provider = new Provider(issuer, {
  adapter: (model) => new MemoryAdapter(model, keptLonger.has(model) ? refreshStore : defaultStore),
  clients: [{
    client_id: clientId,
    client_secret: 'bench-client-secret-0123456789abcdef',
    grant_types: ['client_credentials', 'authorization_code', 'refresh_token'],
    redirect_uris: ['http://127.0.0.1:9/callback'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  features: {
    clientCredentials: { enabled: true },
    // Like Latchkey, a client may introspect only its own tokens.
    introspection: { enabled: true, allowedPolicy: async (ctx, client, token) => token.clientId === client.clientId },
    devInteractions: { enabled: false },
  },
  // Every refresh redeems its token and answers a new one, as Latchkey's rotation does.
  rotateRefreshToken: true,
  // The one user the seeded grants name: no account store to look up.
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  scopes: ['api', 'offline_access'],
  // Set, so that oidc-provider does not warn about its defaults; refresh tokens as long as Latchkey's.
  ttl: { ClientCredentials: 3600, AccessToken: 3600, RefreshToken: 30 * 24 * 3600, Grant: 30 * 24 * 3600 },
});
// Quiet: the harness reads only the listening line.
provider.on('server_error', (ctx, error) => console.error('server_error', error));
// A refused grant's reason (the answer says only "grant request is invalid"), for the log.
provider.on('grant.error', (ctx, error) => console.error('grant.error', error.error_detail ?? error.message));

/**
 * Refresh tokens as an authorization-code grant leaves them. The scope is `offline_access api`
 * without `openid`, like the Latchkey grants they are compared with (scope IDENTITY): neither
 * side signs an ID token on refresh.
 */
async function refreshTokens(count) {
  const client = await provider.Client.find(clientId);
  const tokens = [];
  for (let i = 0; i < count; i += 1) {
    // One grant per chain, as every Latchkey chain has its own authorization.
    const grant = new provider.Grant({ accountId, clientId });
    grant.addOIDCScope('offline_access api');
    const grantId = await grant.save();
    const refreshToken = new provider.RefreshToken({
      accountId, client, grantId, gty: 'authorization_code', scope: 'offline_access api',
    });
    tokens.push(await refreshToken.save());
  }
  return tokens;
}

const oidc = provider.callback();
const server = http.createServer((req, res) => {
  const url = new URL(req.url, issuer);
  if (req.method !== 'POST' || url.pathname !== '/bench/refresh-tokens') {
    oidc(req, res);
    return;
  }
  const count = Number(url.searchParams.get('count'));
  if (!Number.isInteger(count) || count < 1 || count > 100000) {
    res.writeHead(400, { 'content-type': 'text/plain' }).end('count must be a whole number from 1 to 100000');
    return;
  }
  refreshTokens(count).then(
    (tokens) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(tokens)),
    (error) => {
      console.error('refresh-token seeding failed', error);
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(error));
    },
  );
});
server.listen(port, '127.0.0.1', () => console.log(`peer listening on ${issuer}`));

// The tests' upstream identity provider: oidc-provider (the certified Node.js OpenID Connect
// server) with one confidential client, Latchkey, and its development sign-in pages.
// Usage: node server.mjs <port> <latchkey redirect URI> <client secret>
//
// Whoever signs in is the account named by the login typed into its sign-in form: the login is the
// person's e-mail address, and their id there is derived from it. An address that starts with
// "unverified" comes with email_verified false, every other with true, so tests can play both.
import Provider from 'oidc-provider';

const [port, redirectUri, clientSecret] = [Number(process.argv[2]), process.argv[3], process.argv[4]];
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'latchkey',
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({
      sub: `sub-${Buffer.from(id).toString('hex').slice(0, 32)}`,
      email: id,
      email_verified: !id.startsWith('unverified'),
      name: id.split('@')[0],
    }),
  }),
  features: { devInteractions: { enabled: true } },
  // PKCE for every client, as OAuth 2.1 asks (OpenIddict's client always sends it).
  pkce: { required: () => true },
});
provider.proxy = false;
provider.on('server_error', (ctx, error) => console.error('server_error', error));

// Loopback only, like every server the tests start.
provider.listen(port, '127.0.0.1', () => console.log(`listening on ${issuer}`));

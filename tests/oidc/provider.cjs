// A real OpenID provider (the certified npm `oidc-provider`) laid out like a Keycloak realm:
// issuer http://127.0.0.1:PORT/realms/sovereign, Keycloak's /protocol/openid-connect/* routes,
// and client_credentials clients that get RS256 JWT access tokens with Keycloak-style claims
// (azp, realm_access.roles, policy). Usage: OIDC_NODE_MODULES=DIR OIDC_JWKS_FILE=KEYS node provider.cjs PORT
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const { pathToFileURL } = require('node:url');

const modules = process.env.OIDC_NODE_MODULES;
const load = (name) => require(path.join(modules, name));
const port = Number(process.argv[2] || process.env.PORT);
const realm = '/realms/sovereign';
const issuer = `http://127.0.0.1:${port}${realm}`;
// Per client: the audience of its tokens and its extra claims.
const clients = {
  'sovereign-s3': { audience: 'account', policy: 'readwrite', roles: ['offline_access'] },
  'roles-only': { audience: 'sovereign-s3', roles: ['s3-writers'] },
  'no-policy': { audience: 'sovereign-s3', roles: [] },
  'other-app': { audience: 'other-app', policy: 'readwrite', roles: [] },
};

async function main() {
  const { default: Provider } = await import(pathToFileURL(path.join(modules, 'oidc-provider/lib/index.js')));
  const Koa = load('koa');
  const mount = load('koa-mount');
  const provider = new Provider(issuer, {
    clients: Object.keys(clients).map((id) => ({
      client_id: id, client_secret: `${id}-secret`, grant_types: ['client_credentials'],
      redirect_uris: [], response_types: [],
    })),
    jwks: JSON.parse(fs.readFileSync(process.env.OIDC_JWKS_FILE, 'utf8')),
    features: {
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'urn:sovereign-s3',
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource, client) => ({
          audience: clients[client.clientId].audience, scope: 'openid', accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    extraTokenClaims: (ctx, token) => {
      const c = clients[token.clientId];
      return { azp: token.clientId, realm_access: { roles: c.roles }, ...(c.policy ? { policy: c.policy } : {}) };
    },
    routes: {
      authorization: '/protocol/openid-connect/auth', token: '/protocol/openid-connect/token',
      jwks: '/protocol/openid-connect/certs', userinfo: '/protocol/openid-connect/userinfo',
      introspection: '/protocol/openid-connect/token/introspect', revocation: '/protocol/openid-connect/revoke',
      end_session: '/protocol/openid-connect/logout',
    },
  });
  const app = new Koa();
  app.use(mount(realm, provider.app));
  app.listen(port, '127.0.0.1', () => console.log(`oidc provider ready at ${issuer}`));
}

main().catch((e) => { console.error(e); process.exit(1); });

// openid-client (an OpenID-certified relying-party library) as a backend would use it:
// discovery from the base URL alone (it refuses a provider whose `issuer` is not that URL),
// the client-credentials grant, and jose verifying the JWT with the discovered JWKS and issuer.
//
// usage: node openid_client.mjs BASE_URL CLIENT_ID SECRET AUDIENCE basic|post [SCOPE]
// Prints {issuer, tokenType, expiresIn, claims} as JSON; on an error prints {error} and exits 3.
import * as client from 'openid-client';
import * as jose from 'jose';

const [base, clientId, secret, audience, method, scope] = process.argv.slice(2);
const authentication =
  method === 'post' ? client.ClientSecretPost(secret) : client.ClientSecretBasic(secret);

try {
  const config = await client.discovery(new URL(base), clientId, undefined, authentication, {
    execute: [client.allowInsecureRequests], // the test server is plain HTTP on loopback
  });
  const tokens = await client.clientCredentialsGrant(config, scope ? { scope } : {});
  const { issuer, jwks_uri: jwksUri } = config.serverMetadata();
  const keys = jose.createRemoteJWKSet(new URL(jwksUri));
  const { payload } = await jose.jwtVerify(tokens.access_token, keys, {
    issuer,
    audience,
    algorithms: ['RS256'],
  });
  console.log(JSON.stringify({
    issuer,
    tokenType: tokens.token_type,
    expiresIn: tokens.expires_in,
    claims: payload,
  }));
} catch (e) {
  console.log(JSON.stringify({ error: e.error ?? e.code ?? e.constructor.name, message: e.message }));
  process.exit(3);
}

// Frontegg's Node SDK, configured only through its environment variables
// (FRONTEGG_API_GATEWAY_URL, FRONTEGG_CLIENT_ID, FRONTEGG_API_KEY), validates tokens given as
// JSON on argv[2]: [{"name", "token", "permissions"?}]. Prints {name: {ok, type?, error?}}.
const { IdentityClient } = require('@frontegg/client');

async function main() {
  const cases = JSON.parse(process.argv[2]);
  const client = IdentityClient.getInstance();
  const results = {};
  for (const { name, token, permissions } of cases) {
    try {
      const entity = await client.validateIdentityOnToken(token, permissions ? { permissions } : undefined);
      results[name] = { ok: true, type: entity.type, tenantId: entity.tenantId, sub: entity.sub };
    } catch (e) {
      results[name] = { ok: false, error: e.constructor.name };
    }
  }
  // The SDK keeps its vendor-token refresh timer running; leave once the answer is written.
  process.stdout.write(JSON.stringify(results), () => process.exit(0));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

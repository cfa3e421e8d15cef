// Frontegg's Node SDK's AuditsClient, configured only through its environment variables
// (FRONTEGG_API_GATEWAY_URL, FRONTEGG_CLIENT_ID, FRONTEGG_API_KEY): sends the events given as
// JSON on argv[2] ({"send": [audit...], "get": {params}}) with sendAudit, then reads a page
// with getAudits. Prints {"sent": n, "page": <getAudits' answer>}.
const { AuditsClient } = require('@frontegg/client');

async function main() {
  const { send, get } = JSON.parse(process.argv[2]);
  const audits = new AuditsClient();
  await audits.init(process.env.FRONTEGG_CLIENT_ID, process.env.FRONTEGG_API_KEY);
  for (const audit of send) {
    await audits.sendAudit(audit);
  }
  const page = await audits.getAudits(get);
  // The SDK keeps its vendor-token refresh timer running; leave once the answer is written.
  process.stdout.write(JSON.stringify({ sent: send.length, page }), () => process.exit(0));
}

main().catch((e) => {
  console.error(e.response ? JSON.stringify(e.response.data) : e);
  process.exit(1);
});

// The self-service portal in a real browser: Debian's Chromium driven by playwright-core.
// Run by tests/api/portal_browser.rs, which sets up the tenant and its users; each portal is
// opened (as the vendor's app would, with its vendor token) just before it is visited.
//
// usage: node portal_e2e.mjs CONFIG_JSON
//   {base, screenshots, vendorToken, tenant, users: {admin, personalOnly}}
// Prints one JSON object of findings; exits 1 with the failure on stderr.
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const config = JSON.parse(process.argv[2]);
mkdirSync(config.screenshots, { recursive: true });
const found = {};
const check = (ok, message) => { if (!ok) throw new Error(message); };

const browser = await chromium.launch({
  executablePath: process.env.M2M_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

// A fresh portal URL for `user`, as the vendor's application asks for one.
async function portalUrl(user) {
  const response = await fetch(`${config.base}/portal/v1/sessions`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json', 'x-access-token': config.vendorToken,
      'frontegg-tenant-id': config.tenant, 'frontegg-user-id': user,
    },
    body: '{}',
  });
  const body = await response.json();
  check(response.status === 201, `portal session for ${user}: ${response.status} ${JSON.stringify(body)}`);
  return body.url;
}

async function open(url, viewport, colorScheme = 'light') {
  const context = await browser.newContext({ viewport, colorScheme, permissions: ['clipboard-read', 'clipboard-write'] });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  let session = null;
  page.on('response', async (response) => {
    if (response.url().endsWith('/portal/v1/sessions/handoff') && response.ok()) {
      session = (await response.json()).accessToken;
    }
  });
  await page.goto(url);
  return { context, page, problems, session: () => session };
}

const shot = (page, name) => page.screenshot({ path: `${config.screenshots}/${name}.png`, fullPage: true });
const rows = (page, kind) => page.locator(`#view-${kind} tbody tr`);

async function createToken(page, kind, description, { roles = [], expiry = null } = {}) {
  await page.click(`#create-${kind}`);
  await page.fill('#create-description', description);
  if (expiry) await page.selectOption('#create-expiry', expiry);
  for (const role of roles) await page.check(`#create-roles input[value="${role}"]`);
  await page.click('#create-form button[type=submit]');
  await page.waitForSelector('#secret-dialog[open]');
  const clientId = await page.textContent('#secret-client');
  const secret = await page.textContent('#secret-secret');
  return { clientId, secret };
}

async function closeSecret(page) {
  await page.check('#secret-stored');
  await page.click('#secret-done');
  await page.waitForSelector('#secret-dialog:not([open])', { state: 'attached' });
}

async function exchange(clientId, secret) {
  const response = await fetch(`${config.base}/identity/resources/auth/v1/api-token`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ clientId, secret }),
  });
  return response.status;
}

try {
  // 1. The administrator at 1280 px: both views, create, see once, copy, list, search, edit,
  // rotate (see once again), delete.
  const adminUrl = await portalUrl(config.users.admin);
  const admin = await open(adminUrl, { width: 1280, height: 900 });
  const page = admin.page;
  await page.waitForSelector('#app:not([hidden])');
  check(new URL(page.url()).hash === '', 'the hand-off leaves the address bar');
  found.views = await page.locator('[role=tab]:visible').allTextContents();
  found.signedInAs = await page.textContent('#who');
  await page.waitForSelector('#view-personal .empty');
  found.emptyState = await page.textContent('#view-personal .empty');
  await shot(page, 'personal-empty-1280');

  const laptop = await createToken(page, 'personal', 'alice laptop', { expiry: '30' });
  found.secretShown = /^m2mu_/.test(laptop.secret);
  found.curlHasBase = (await page.textContent('#secret-curl')).includes(config.base);
  await page.click('[data-copy=secret-secret]');
  await page.waitForFunction(() => document.getElementById('announcer').textContent === 'Copied');
  found.copied = (await page.evaluate(() => navigator.clipboard.readText())) === laptop.secret;
  await shot(page, 'secret-once-1280');
  await page.keyboard.press('Escape');
  found.escapeNeedsConfirmation = await page.locator('#secret-dialog[open] #secret-error:visible').count() === 1;
  await closeSecret(page);
  found.secretGoneFromPage = !(await page.content()).includes(laptop.secret);
  found.personalExchange = await exchange(laptop.clientId, laptop.secret);
  await page.waitForSelector(`#view-personal tbody tr:has-text("${laptop.clientId}")`);
  await createToken(page, 'personal', 'release script', { expiry: '7' }).then(() => closeSecret(page));
  await page.waitForFunction(() => document.querySelectorAll('#view-personal tbody tr').length === 2);
  found.badgesOnCreation = await page.locator('#view-personal tbody tr:has-text("release script") .badge').count();
  await page.fill('#search-personal', 'laptop');
  found.searchRows = await rows(page, 'personal').count();
  await page.fill('#search-personal', laptop.clientId.slice(0, 8));
  found.searchByClientIdRows = await rows(page, 'personal').count();
  await page.fill('#search-personal', '');
  await shot(page, 'personal-1280');
  await page.click('#view-personal tbody tr:has-text("release script") button:has-text("Delete")');
  found.deleteNamesToken = (await page.textContent('#delete-text')).includes('release script');
  await page.click('#delete-form button[type=submit]');
  await page.waitForFunction(() => document.querySelectorAll('#view-personal tbody tr').length === 1);

  await page.click('#tab-tenant');
  await page.waitForSelector('#view-tenant table');
  const bot = await createToken(page, 'tenant', 'deploy bot', { roles: ['deployer'], expiry: '90' });
  found.tenantSecretShown = /^m2mt_/.test(bot.secret);
  await closeSecret(page);
  found.tenantExchange = await exchange(bot.clientId, bot.secret);
  const botRow = `#view-tenant tbody tr:has-text("${bot.clientId}")`;
  await page.waitForSelector(botRow);
  found.createdBy = await page.textContent(`${botRow} td[data-label="Created by"]`);
  found.trusted = await page.textContent('#view-tenant tbody tr:has-text("nightly backup") ul.trust li');
  await page.click(`${botRow} button:has-text("Edit")`);
  await page.fill('#edit-description', 'deploy bot (prod)');
  await page.check('#edit-roles input[value="token-admin"]');
  await page.click('#edit-form button[type=submit]');
  await page.waitForSelector(`${botRow}:has-text("deploy bot (prod)")`);
  found.editedRoles = await page.textContent(`${botRow} td[data-label="Roles"]`);
  // A token's use: the chart's numbers are the API's.
  const backupRow = '#view-tenant tbody tr:has-text("nightly backup")';
  const backupId = (await page.textContent(`${backupRow} td[data-label="Client ID"]`)).trim();
  found.sparkline = {
    label: await page.getAttribute(`${backupRow} td[data-label="Last used"] svg.sparkline`, 'aria-label'),
    bars: await page.locator(`${backupRow} svg.sparkline g`).count(),
  };
  await page.click(`${backupRow} button:has-text("Usage")`);
  await page.waitForSelector('#usage-summary');
  found.usageSummary = await page.textContent('#usage-summary');
  found.usageChartLabel = await page.getAttribute('#usage-body svg', 'aria-label');
  const usage = await (await fetch(`${config.base}/identity/resources/tenants/api-tokens/v1/${backupId}/usage`, {
    headers: { 'x-access-token': config.vendorToken, 'frontegg-tenant-id': config.tenant },
  })).json();
  found.usageApi = usage.days.reduce((t, d) => ({
    issued: t.issued + d.issued,
    refused: t.refused + d.refused.secret + d.refused.allowList + d.refused.rateLimit + d.refused.disabled,
  }), { issued: 0, refused: 0 });
  await page.click('#usage-dialog summary');
  found.usageTableIssued = await page.locator('#usage-dialog tbody td:nth-child(2)').allTextContents();
  await shot(page, 'usage-1280');
  await page.click('#usage-dialog [data-close]');
  await page.fill('#search-tenant', 'nightly');
  found.tenantSearch = await rows(page, 'tenant').allTextContents();
  await page.fill('#search-tenant', '');
  await shot(page, 'tenant-1280');
  await page.click(`${botRow} button:has-text("Rotate")`);
  found.rotateNamesToken = (await page.textContent('#rotate-text')).includes('deploy bot (prod)');
  await page.selectOption('#rotate-grace', '0');
  await page.click('#rotate-form button[type=submit]');
  await page.waitForSelector('#secret-dialog[open]');
  found.rotatedTitle = await page.textContent('#secret-title');
  found.rotatedSameClient = (await page.textContent('#secret-client')) === bot.clientId;
  const rotatedSecret = await page.textContent('#secret-secret');
  await shot(page, 'rotated-secret-1280');
  await closeSecret(page);
  found.rotatedExchange = await exchange(bot.clientId, rotatedSecret);
  found.oldSecretAfterRotation = await exchange(bot.clientId, bot.secret);
  await page.click(`${botRow} button:has-text("Delete")`);
  await page.click('#delete-form button[type=submit]');
  await page.waitForSelector(botRow, { state: 'detached' });
  found.tenantExchangeAfterDelete = await exchange(bot.clientId, rotatedSecret);

  // The activity: newest first, a page at a time, searched by a token's client ID.
  await page.click('#tab-activity');
  // The tab reloads the activity it loaded at the start: the deletion just made comes first.
  await page.waitForSelector('#view-activity tbody tr:first-child:has-text("apiToken.deleted")')
    .catch(() => {});
  const activityRows = page.locator('#view-activity tbody tr');
  found.activityNewest = await activityRows.first().locator('td[data-label="What"]').textContent();
  found.activityNewestBy = await activityRows.first().locator('td[data-label="By"]').textContent();
  found.activityFirstPage = await activityRows.count();
  found.activityTimesDescend = await page.$$eval('#view-activity time', (times) => times
    .map((t) => Date.parse(t.getAttribute('datetime')))
    .every((at, i, all) => i === 0 || all[i - 1] >= at));
  await shot(page, 'activity-1280');
  await page.click('#activity-older');
  await page.waitForFunction(() => /^Showing 21/.test(document.getElementById('activity-range').textContent));
  found.activitySecondRange = await page.textContent('#activity-range');
  found.activityNewerEnabled = await page.isEnabled('#activity-newer');
  await page.click('#activity-newer');
  await page.waitForFunction(() => /^Showing 1–/.test(document.getElementById('activity-range').textContent));
  await page.fill('#search-activity', bot.clientId);
  await page.press('#search-activity', 'Enter');
  // Its four changes, and its uses if its exchanges crossed a minute (apiToken.used).
  await page.waitForFunction(() => / of [45]$/.test(document.getElementById('activity-range').textContent));
  found.activityOfBot = await page.$$eval('#view-activity tbody td[data-label="What"] code', (cells) => cells.map((c) => c.textContent));
  await page.fill('#search-activity', 'no-such-token');
  await page.click('#search-activity-submit');
  await page.waitForSelector('#activity-none');
  found.activityNone = await page.textContent('#activity-none');
  found.adminProblems = admin.problems;
  await admin.context.close();

  // 2. A reused hand-off opens nothing.
  const reused = await open(adminUrl, { width: 1280, height: 900 });
  await reused.page.waitForSelector('#status:not([hidden])');
  found.reusedHandoff = await reused.page.textContent('#status');
  await reused.context.close();

  // 3. A user who may manage only their own tokens: no tenant view, and the API refuses.
  const own = await open(await portalUrl(config.users.personalOnly), { width: 1280, height: 900 });
  await own.page.waitForSelector('#app:not([hidden])');
  found.personalOnlyViews = await own.page.locator('[role=tab]:visible').allTextContents();
  const refused = await own.page.request.get(`${config.base}/identity/resources/tenants/api-tokens/v1`, {
    headers: { authorization: `Bearer ${own.session()}` },
  });
  found.personalOnlyTenantApi = refused.status();
  const trail = await own.page.request.get(`${config.base}/audits`, {
    headers: { authorization: `Bearer ${own.session()}` },
  });
  found.personalOnlyAudits = trail.status();
  await own.context.close();

  // 4. Keyboard only: create a personal token and close the secret without a pointer.
  const keys = await open(await portalUrl(config.users.admin), { width: 1280, height: 900 });
  const kp = keys.page;
  await kp.waitForSelector('#create-personal');
  let reached = false;
  for (let i = 0; i < 20 && !reached; i += 1) {
    await kp.keyboard.press('Tab');
    reached = await kp.evaluate(() => document.activeElement && document.activeElement.id === 'create-personal');
  }
  check(reached, 'Tab reaches "Create token"');
  await kp.keyboard.press('Enter');
  await kp.waitForSelector('#create-dialog[open]');
  found.focusInDialog = await kp.evaluate(() => document.activeElement.id);
  await kp.keyboard.type('keyboard token');
  await kp.keyboard.press('Enter');
  await kp.waitForSelector('#secret-dialog[open]');
  let onCheckbox = false;
  for (let i = 0; i < 10 && !onCheckbox; i += 1) {
    await kp.keyboard.press('Tab');
    onCheckbox = await kp.evaluate(() => document.activeElement.id === 'secret-stored');
  }
  check(onCheckbox, 'Tab reaches the confirmation');
  await kp.keyboard.press('Space');
  await kp.keyboard.press('Tab');
  await kp.keyboard.press('Enter');
  await kp.waitForSelector('#secret-dialog:not([open])', { state: 'attached' });
  await kp.waitForSelector('#view-personal tbody tr:has-text("keyboard token")');
  // Focus comes back once the list has loaded again; a busy machine may take a moment.
  await kp
    .waitForFunction(() => document.activeElement && document.activeElement.id === 'create-personal', null, { timeout: 15000 })
    .catch(() => {});
  found.focusAfterDialog = await kp.evaluate(() => document.activeElement.id);
  // When the session has run out, the page says so instead of failing silently.
  await kp.route('**/identity/resources/users/api-tokens/v1', (route) => route.fulfill({
    status: 401, contentType: 'application/json', body: '{"errors":["Unauthorized"]}',
  }));
  await kp.click('#create-personal');
  await kp.fill('#create-description', 'too late');
  await kp.click('#create-form button[type=submit]');
  await kp.waitForSelector('#status:not([hidden])');
  found.endedSession = await kp.textContent('#status');
  await keys.context.close();

  // 5. 375 px wide: both views, no horizontal scrolling.
  const narrow = await open(await portalUrl(config.users.admin), { width: 375, height: 800 });
  const np = narrow.page;
  await np.waitForSelector('#view-personal table, #view-personal .empty');
  await createToken(np, 'personal', 'phone token').then(() => closeSecret(np));
  await np.waitForSelector('#view-personal tbody tr');
  found.narrowOverflow = [];
  found.narrowOverflow.push(await np.evaluate(() => document.documentElement.scrollWidth));
  await shot(np, 'personal-375');
  await np.click('#tab-tenant');
  await np.waitForSelector('#view-tenant table, #view-tenant .empty');
  found.narrowOverflow.push(await np.evaluate(() => document.documentElement.scrollWidth));
  await shot(np, 'tenant-375');
  await np.click('#tab-activity');
  await np.waitForSelector('#view-activity tbody tr');
  found.narrowOverflow.push(await np.evaluate(() => document.documentElement.scrollWidth));
  await shot(np, 'activity-375');
  await narrow.context.close();

  // 6. In the vendor's brand (name, logo, accent colours, auto mode), light and dark, at 1280
  // and 375 px: each screenshot taken, and axe-core run over the page (in a context of its
  // own that lets the test inject it past the page's CSP).
  const logo = 'data:image/svg+xml;base64,' + Buffer.from(
    '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="32"><rect width="120" height="32" rx="6" fill="#6d28d9"/></svg>',
  ).toString('base64');
  const branding = { displayName: 'Hooli', logoUrl: logo, accentColor: '#6d28d9', accentColorDark: '#c4b5fd', theme: 'auto' };
  const branded = await fetch(`${config.base}/identity/resources/configurations/v1`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json', 'x-access-token': config.vendorToken },
    body: JSON.stringify({ branding }),
  });
  check(branded.status === 200, `branding: ${branded.status} ${await branded.text()}`);
  // A colour without contrast and an oversized logo are refused, and the brand above stays.
  found.brandingRefused = [];
  for (const bad of [{ ...branding, accentColor: '#ffd400', theme: 'light' },
    { ...branding, logoUrl: 'data:image/png;base64,' + 'A'.repeat(40000) }]) {
    const refused = await fetch(`${config.base}/identity/resources/configurations/v1`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json', 'x-access-token': config.vendorToken },
      body: JSON.stringify({ branding: bad }),
    });
    found.brandingRefused.push({ status: refused.status, says: (await refused.json()).errors.join(' ') });
  }
  const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  found.branded = {};
  for (const [scheme, width] of [['light', 1280], ['dark', 1280], ['light', 375], ['dark', 375]]) {
    const b = await open(await portalUrl(config.users.admin), { width, height: 900 }, scheme);
    await b.page.waitForSelector('#view-personal table, #view-personal .empty');
    await b.page.waitForFunction(() => document.getElementById('brand-logo').complete);
    await shot(b.page, `branded-${scheme}-${width}`);
    const seen = await b.page.evaluate(() => ({
      title: document.getElementById('title').textContent,
      logo: document.getElementById('brand-logo').naturalWidth > 0,
      accent: getComputedStyle(document.getElementById('create-personal')).backgroundColor,
    }));
    const html = await b.page.content();
    const audit = await browser.newContext({ viewport: { width, height: 900 }, colorScheme: scheme, bypassCSP: true });
    const ap = await audit.newPage();
    await ap.route('**/*', (route) => route.request().url().startsWith(config.base) ? route.continue() : route.abort());
    await ap.goto(await portalUrl(config.users.admin));
    await ap.waitForSelector('#view-personal table, #view-personal .empty');
    await ap.addScriptTag({ content: axeSource });
    const results = await ap.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => v.id + ': ' + v.nodes.map((n) => n.target.join(' ')).join(', ')));
    await audit.close();
    found.branded[`${scheme}-${width}`] = { ...seen, violations: results, problems: b.problems, hasName: html.includes('Hooli') };
    await b.context.close();
  }

  // 7. A month on (the browser's clock moved 31 days ahead): a token never used since it was
  // made is marked for retiring; the 7-day one has expired.
  const later = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const lp = await later.newPage();
  await lp.clock.setFixedTime(new Date(Date.now() + 31 * 24 * 3600 * 1000));
  await lp.goto(await portalUrl(config.users.admin));
  await lp.waitForSelector('#view-personal tbody tr');
  found.monthOn = {
    unused: await lp.locator('#view-personal tbody tr:has-text("keyboard token") .badge.unused').count(),
    expired: await lp.locator('#view-personal tbody tr:has-text("keyboard token") .badge.expired').textContent(),
  };
  await later.close();

  console.log(JSON.stringify(found));
} catch (e) {
  console.error(e.stack || String(e));
  console.error(JSON.stringify(found));
  process.exitCode = 1;
} finally {
  await browser.close();
}

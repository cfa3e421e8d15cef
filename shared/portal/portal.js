'use strict';
// The self-service page. It swaps the hand-off in its URL fragment for a session kept only in
// this variable (no cookie, no storage), then lists, creates, edits, rotates and deletes tokens through
// the API it was served by, and shows the tenant's activity (its audit trail) to those who may read it.
(function () {
  const PATHS = {
    personal: '/identity/resources/users/api-tokens/v1',
    tenant: '/identity/resources/tenants/api-tokens/v1',
  };
  const DAY = 24 * 60;
  const PRESETS = [
    { value: '7', label: '7 days', minutes: 7 * DAY },
    { value: '30', label: '30 days', minutes: 30 * DAY },
    { value: '90', label: '90 days', minutes: 90 * DAY },
    { value: 'custom', label: 'Custom…' },
    { value: 'never', label: 'Never' },
  ];
  // "Expires soon": within a week of its end, for a token that lives longer than a week; within
  // the last fifth of its life, for a shorter one. So never on the day it is made.
  const SOON_MS = 7 * 24 * 3600 * 1000;
  const SOON_FRACTION = 0.2;
  const UNUSED_MS = 30 * 24 * 3600 * 1000;
  const VIEWS = ['personal', 'tenant', 'activity'];
  const ACTIVITY_PAGE = 20;

  const state = {
    session: null, info: null, kind: 'personal', tokens: { personal: [], tenant: [] }, usage: { personal: new Map(), tenant: new Map() }, query: { personal: '', tenant: '' }, ended: false,
    activity: { offset: 0, filter: '', page: null },
  };
  const $ = (id) => document.getElementById(id);

  // h('tag', {attr: value, onclick: fn}, child, ...): elements without HTML parsing.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === false || value === null || value === undefined) continue;
      if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
      else if (name === 'text') el.textContent = value;
      else el.setAttribute(name, value === true ? '' : value);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) el.append(child);
    }
    return el;
  }

  function announce(message) {
    const region = $('announcer');
    region.textContent = '';
    setTimeout(() => { region.textContent = message; }, 50);
  }

  function showStatus(message) {
    const status = $('status');
    status.textContent = message;
    status.hidden = false;
  }

  function endSession() {
    state.ended = true;
    state.session = null;
    for (const dialog of document.querySelectorAll('dialog[open]')) dialog.close();
    $('app').hidden = true;
    showStatus('Your session has ended. To keep managing your tokens, open this page again from the application.');
  }

  // A readable sentence for a failed call; ends the page's session on a 401.
  function explain(status, body) {
    const said = body && Array.isArray(body.errors) && typeof body.errors[0] === 'string' ? body.errors[0] : '';
    if (status === 0) return 'The server could not be reached. Check your connection and try again.';
    if (status === 401) { endSession(); return 'Your session has ended. Open this page again from the application.'; }
    if (status === 403) {
      if (/disabled/i.test(said)) return 'API tokens are turned off for your account by its administrator.';
      if (/hold/i.test(said)) return 'A token can have only roles that you hold yourself.';
      return 'You do not have permission to do this. Ask an administrator of your account.';
    }
    if (status === 404) return 'This token no longer exists. The list has been refreshed.';
    if (status === 400 && said) return said.replace('expiresInMinutes', 'The expiry') + (said.endsWith('.') ? '' : '.');
    if (status === 429) return 'Too many requests. Wait a moment and try again.';
    return 'Something went wrong on our side. Please try again in a moment.';
  }

  async function api(method, path, body) {
    if (state.ended) throw new Error('Your session has ended. Open this page again from the application.');
    let response;
    try {
      response = await fetch(path, {
        method,
        headers: Object.assign({ accept: 'application/json' },
          state.session ? { authorization: 'Bearer ' + state.session } : {},
          body === undefined ? {} : { 'content-type': 'application/json' }),
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'omit',
        cache: 'no-store',
        referrerPolicy: 'no-referrer',
      });
    } catch (e) {
      throw new Error(explain(0));
    }
    let parsed = null;
    try { parsed = await response.json(); } catch (e) { parsed = null; }
    if (!response.ok) {
      const error = new Error(explain(response.status, parsed));
      error.status = response.status;
      throw error;
    }
    return parsed;
  }

  function formatDate(iso) {
    if (!iso) return null;
    const date = new Date(iso);
    return date.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
  }

  function roleName(id) {
    const role = (state.info.roles || []).find((r) => r.id === id);
    return role ? (role.name || role.key) : id;
  }

  // A trust policy in words: whose workloads, and what they must be.
  function policyText(policy) {
    let host = policy.issuer;
    try { host = new URL(policy.issuer).host; } catch (e) { /* shown as it is */ }
    const conditions = (policy.subject ? ['sub ' + policy.subject] : [])
      .concat(Object.entries(policy.claims || {}).map(([name, value]) => name + ' ' + value));
    return 'Workloads of ' + host + ' for ' + policy.audience + ' with ' + conditions.join(', ');
  }

  // The description, and the workloads a token trusts (it needs no secret for them).
  function describedCell(token) {
    const description = token.description || h('span', { class: 'muted', text: 'No description' });
    const policies = token.trustPolicies || [];
    if (!policies.length) return description;
    return h('div', {}, description,
      h('ul', { class: 'trust', 'aria-label': 'Trusted workloads' }, policies.map((p) => h('li', { text: policyText(p) }))));
  }

  function soonWindow(token) {
    const life = new Date(token.expires).getTime() - new Date(token.createdAt).getTime();
    return life > SOON_MS ? SOON_MS : life * SOON_FRACTION;
  }

  // When it was last used, beside it its use over 30 days (a small chart; a larger one and a
  // table on demand), and a mark when it has not been used for 30 days (or, never used, was
  // made more than 30 days ago): a token to retire.
  function lastUsedCell(kind, token, name) {
    const days = state.usage[kind].get(token.clientId);
    const cell = [formatDate(token.lastUsedAt) || h('span', { class: 'muted', text: 'Never' }), ' ',
      h('span', { class: 'glance' },
        days ? usageBars(days, 'sparkline', 60, 18) : null,
        h('button', { type: 'button', class: 'link', 'aria-label': 'Usage of ' + name, onclick: (e) => openUsage(kind, token, e.currentTarget), text: 'Usage' }))];
    const since = new Date(token.lastUsedAt || token.createdAt).getTime();
    if (Date.now() - since >= UNUSED_MS) {
      cell.push(h('span', { class: 'badge unused', text: 'Unused 30 days', title: 'Not used for 30 days or more: retire it if nothing needs it' }));
    }
    return cell;
  }

  function expiryCell(token) {
    if (!token.expires) return ['Never'];
    const at = new Date(token.expires).getTime();
    const left = at - Date.now();
    const cell = [formatDate(token.expires)];
    if (left <= 0) cell.push(h('span', { class: 'badge expired', text: 'Expired' }));
    else if (left <= soonWindow(token)) cell.push(h('span', { class: 'badge', text: 'Expires soon' }));
    return cell;
  }

  function abilities(kind) {
    return kind === 'personal' ? state.info.personalTokens : state.info.tenantTokens;
  }

  function renderView(kind) {
    const view = $('view-' + kind);
    const can = abilities(kind);
    const tokens = state.tokens[kind];
    const query = state.query[kind].trim().toLowerCase();
    const shown = tokens.filter((t) => !query
      || (t.description || '').toLowerCase().includes(query)
      || t.clientId.toLowerCase().includes(query));
    const title = kind === 'personal' ? 'Personal tokens' : 'Tenant tokens';
    const purpose = kind === 'personal'
      ? 'A personal token lets a script or command-line tool act as you, with your roles in ' + state.info.tenantId + '.'
      : 'A tenant token lets a service act for ' + state.info.tenantId + ' with the roles you give it, whoever runs it.';
    const searchId = 'search-' + kind;
    const head = h('div', { class: 'view-head' },
      h('div', {}, h('h2', { text: title }), h('p', { class: 'muted', text: purpose })),
      tokens.length ? h('div', { class: 'search' },
        h('label', { for: searchId, text: 'Search by description or client ID' }),
        h('input', { id: searchId, type: 'search', value: state.query[kind], oninput: (e) => {
          state.query[kind] = e.target.value;
          const at = e.target.selectionStart;
          renderView(kind);
          const again = $(searchId);
          again.focus();
          again.setSelectionRange(at, at);
        } })) : null,
      can.write ? h('button', { type: 'button', class: 'primary', id: 'create-' + kind, onclick: (e) => openCreate(kind, e.currentTarget), text: 'Create token' }) : null);
    view.replaceChildren(head);
    if (!tokens.length) {
      view.append(h('div', { class: 'empty' },
        h('h3', { text: kind === 'personal' ? 'You have no personal tokens yet' : 'This account has no tenant tokens yet' }),
        h('p', { text: 'Create a token, store its client ID and secret where your script or service runs, and exchange them for a short-lived access token:' }),
        h('pre', { text: exchangeCommand('<client ID>', '<secret>') })));
      return;
    }
    if (!shown.length) {
      view.append(h('p', { class: 'muted', role: 'status', text: 'No token matches “' + state.query[kind] + '”.' }));
      return;
    }
    const columns = ['Description', 'Client ID', 'Created'];
    if (kind === 'tenant') columns.push('Created by', 'Roles');
    columns.push('Expires', 'Last used', 'Actions');
    const rows = shown.map((token) => {
      const cells = [
        ['Description', describedCell(token)],
        ['Client ID', h('code', { text: token.clientId })],
        ['Created', formatDate(token.createdAt)],
      ];
      if (kind === 'tenant') {
        cells.push(['Created by', token.createdByName || token.createdByUserId || h('span', { class: 'muted', text: 'The application' })]);
        const roles = (token.roleIds || []).map(roleName).join(', ');
        cells.push(['Roles', roles || h('span', { class: 'muted', text: 'None' })]);
      }
      cells.push(['Expires', expiryCell(token)]);
      const name = token.description || token.clientId;
      cells.push(['Last used', lastUsedCell(kind, token, name)]);
      cells.push(['Actions', h('span', { class: 'row-actions' },
        kind === 'tenant' && can.write ? h('button', { type: 'button', class: 'link', 'aria-label': 'Edit ' + name, onclick: (e) => openEdit(token, e.currentTarget), text: 'Edit' }) : null,
        can.write ? h('button', { type: 'button', class: 'link', 'aria-label': 'Rotate the secret of ' + name, onclick: (e) => openRotate(kind, token, e.currentTarget), text: 'Rotate' }) : null,
        can.delete ? h('button', { type: 'button', class: 'link danger-text', 'aria-label': 'Delete ' + name, onclick: (e) => openDelete(kind, token, e.currentTarget), text: 'Delete' }) : null)]);
      // One block a cell, so that on narrow screens (a grid of label and content) its parts stay together.
      return h('tr', {}, cells.map(([label, content]) => h('td', { 'data-label': label }, h('div', {}, content))));
    });
    view.append(h('table', {},
      h('caption', { class: 'visually-hidden', text: title }),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', text: c })))),
      h('tbody', {}, rows)));
  }

  // Renders again what `render` draws, keeping focus on what had it: an element the new
  // rendering replaced gives focus to its successor (same id).
  function keepingFocus(render) {
    const before = document.activeElement;
    render();
    if (before && before.id && !before.isConnected && $(before.id)) $(before.id).focus();
  }

  // The tokens, and beside them their use over 30 days (read at once; without it, no charts).
  async function load(kind) {
    try {
      const [tokens, usage] = await Promise.all([api('GET', PATHS[kind]), api('GET', PATHS[kind] + '/usage').catch(() => [])]);
      state.tokens[kind] = tokens;
      state.usage[kind] = new Map(usage.map((u) => [u.clientId, u.days]));
      keepingFocus(() => renderView(kind));
    } catch (e) {
      if (!state.ended) $('view-' + kind).replaceChildren(h('p', { class: 'error', role: 'alert', text: e.message }));
    }
  }

  // The activity: a page of the tenant's audit trail, newest first, searched by what it was done to.
  function actorName(actor) {
    switch (actor && actor.type) {
      case 'user': return actor.id;
      case 'vendor': return 'The application';
      case 'provisioning': return 'Provisioning (' + actor.id + ')';
      case 'credential': return 'Token ' + actor.id;
      case 'system': return 'The service';
      default: return 'Someone unidentified';
    }
  }

  function formatTime(iso) {
    return new Date(iso).toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  function renderActivity(focusId) {
    const view = $('view-activity');
    const { page, offset, filter } = state.activity;
    const searchForm = h('form', { class: 'search', role: 'search', onsubmit: (event) => {
      event.preventDefault();
      state.activity.filter = $('search-activity').value.trim();
      state.activity.offset = 0;
      loadActivity('search-activity');
    } },
    h('label', { for: 'search-activity', text: 'Search by client ID, user ID or role ID' }),
    h('span', { class: 'search-row' },
      h('input', { id: 'search-activity', type: 'search', value: filter, autocomplete: 'off' }),
      h('button', { type: 'submit', class: 'secondary', id: 'search-activity-submit', text: 'Search' })));
    view.replaceChildren(h('div', { class: 'view-head' },
      h('div', {}, h('h2', { text: 'Activity' }),
        h('p', { class: 'muted', text: 'Who did what to the tokens, people and roles of ' + state.info.tenantId + ', newest first.' })),
      searchForm));
    const events = page.data;
    if (!events.length) {
      view.append(h('p', { class: 'muted', role: 'status', id: 'activity-none',
        text: filter ? 'No activity concerns “' + filter + '”.' : 'Nothing has happened here yet.' }));
    } else {
      const columns = ['When', 'What', 'By', 'From', 'Outcome'];
      const rows = events.map((event) => h('tr', {},
        h('td', { 'data-label': 'When' }, h('time', { datetime: event.createdAt, text: formatTime(event.createdAt) })),
        h('td', { 'data-label': 'What', class: 'what' }, h('span', { text: event.description }), h('br'), h('code', { class: 'muted', text: event.action })),
        h('td', { 'data-label': 'By' }, actorName(event.actor)),
        h('td', { 'data-label': 'From' }, event.ip || h('span', { class: 'muted', text: '—' })),
        h('td', { 'data-label': 'Outcome' }, event.outcome === 'refused'
          ? h('span', { class: 'badge expired', text: 'Refused' }) : 'Done')));
      view.append(h('table', {},
        h('caption', { class: 'visually-hidden', text: 'Activity' }),
        h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', text: c })))),
        h('tbody', {}, rows)));
    }
    const last = offset + events.length;
    const move = (to, id) => { state.activity.offset = to; loadActivity(id); };
    view.append(h('nav', { class: 'pager', 'aria-label': 'Activity pages' },
      h('p', { id: 'activity-range', class: 'muted', 'aria-live': 'polite',
        text: events.length ? 'Showing ' + (offset + 1) + '–' + last + ' of ' + page.total : '' }),
      h('button', { type: 'button', class: 'secondary', id: 'activity-newer', disabled: offset === 0,
        onclick: () => move(Math.max(0, offset - ACTIVITY_PAGE), 'activity-newer'), text: 'Newer' }),
      h('button', { type: 'button', class: 'secondary', id: 'activity-older', disabled: last >= page.total,
        onclick: () => move(last, 'activity-older'), text: 'Older' })));
    if (focusId) {
      const target = $(focusId);
      (target && !target.disabled ? target : $('search-activity')).focus();
    }
  }

  async function loadActivity(focusId) {
    const query = new URLSearchParams({ offset: String(state.activity.offset), count: String(ACTIVITY_PAGE) });
    if (state.activity.filter) query.set('filter', state.activity.filter);
    try {
      state.activity.page = await api('GET', '/audits?' + query);
      renderActivity(focusId);
    } catch (e) {
      if (!state.ended) $('view-activity').replaceChildren(h('p', { class: 'error', role: 'alert', text: e.message }));
    }
  }

  function refresh(kind) {
    return kind === 'activity' ? loadActivity() : load(kind);
  }

  function selectTab(kind, focus) {
    const changed = state.kind !== kind;
    state.kind = kind;
    if (changed && kind === 'activity' && state.activity.page) loadActivity();
    for (const other of VIEWS) {
      const tab = $('tab-' + other);
      const selected = other === kind;
      tab.setAttribute('aria-selected', String(selected));
      tab.tabIndex = selected ? 0 : -1;
      $('view-' + other).hidden = !selected;
    }
    if (focus) $('tab-' + kind).focus();
  }

  function visibleKinds() {
    return VIEWS.filter((kind) => !$('tab-' + kind).hidden);
  }

  // Dialogs: modal (the page behind is inert), focus returns where it was on close.
  const openers = new Map();
  function openDialog(dialog, opener, first) {
    openers.set(dialog, opener || document.activeElement);
    for (const error of dialog.querySelectorAll('.error')) error.hidden = true;
    dialog.showModal();
    (first || dialog.querySelector('input, select, button')).focus();
  }
  function closeDialog(dialog) {
    dialog.close();
  }
  for (const dialog of document.querySelectorAll('dialog')) {
    dialog.addEventListener('close', () => {
      if (document.querySelector('dialog[open]')) return; // another dialog took over
      const opener = openers.get(dialog);
      openers.delete(dialog);
      const target = opener && opener.isConnected ? opener : $('create-' + state.kind) || $('tab-' + state.kind);
      if (target && !state.ended) target.focus();
    });
    for (const button of dialog.querySelectorAll('[data-close]')) button.addEventListener('click', () => closeDialog(dialog));
  }
  function fail(dialog, message) {
    const error = dialog.querySelector('.error');
    error.textContent = message;
    error.hidden = false;
  }

  function exchangeCommand(clientId, secret) {
    return "curl -X POST '" + location.origin + "/identity/resources/auth/v1/api-token' \\\n"
      + "  -H 'content-type: application/json' \\\n"
      + "  -d '" + JSON.stringify({ clientId, secret }) + "'";
  }

  function roleChoices(container, chosen) {
    const roles = state.info.roles || [];
    container.replaceChildren(...(roles.length ? roles.map((role) => h('label', {},
      h('input', { type: 'checkbox', name: 'role', value: role.id, checked: chosen.includes(role.id) }),
      role.name || role.key)) : [h('p', { class: 'hint', text: 'You hold no roles, so this token can hold none.' })]));
  }

  function chosenRoles(container) {
    return [...container.querySelectorAll('input[name=role]:checked')].map((input) => input.value);
  }

  // Create.
  function openCreate(kind, opener) {
    const dialog = $('create-dialog');
    dialog.dataset.kind = kind;
    $('create-form').reset();
    $('create-title').textContent = kind === 'personal' ? 'Create a personal token' : 'Create a tenant token';
    $('create-intro').textContent = kind === 'personal'
      ? 'It acts as you, with your roles, until it expires or you delete it.'
      : 'It acts for ' + state.info.tenantId + ' with the roles you choose.';
    const max = state.info.maxExpiresInMinutes;
    const select = $('create-expiry');
    select.replaceChildren(...PRESETS
      .filter((p) => (p.value === 'never' ? !max : !p.minutes || !max || p.minutes <= max))
      .map((p) => h('option', { value: p.value, text: p.label })));
    select.value = select.options[0].value;
    $('create-days').max = max ? String(Math.floor(max / DAY)) : '';
    $('create-custom').hidden = true;
    const roles = $('create-roles');
    roles.hidden = kind !== 'tenant';
    roleChoices(roles.querySelector('.role-list'), []);
    openDialog(dialog, opener, $('create-description'));
  }
  $('create-expiry').addEventListener('change', (e) => {
    $('create-custom').hidden = e.target.value !== 'custom';
  });
  $('create-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const dialog = $('create-dialog');
    const kind = dialog.dataset.kind;
    const description = $('create-description').value.trim();
    if (!description) return fail(dialog, 'Give the token a description, so you can recognise it later.');
    const body = { description };
    const choice = $('create-expiry').value;
    if (choice === 'custom') {
      const days = Number($('create-days').value);
      const max = state.info.maxExpiresInMinutes;
      if (!Number.isInteger(days) || days < 1) return fail(dialog, 'Enter the number of days as a whole number, 1 or more.');
      if (max && days * DAY > max) return fail(dialog, 'Tokens here can last at most ' + Math.floor(max / DAY) + ' days.');
      body.expiresInMinutes = days * DAY;
    } else if (choice !== 'never') {
      body.expiresInMinutes = Number(choice) * DAY;
    }
    if (kind === 'tenant') body.roleIds = chosenRoles($('create-roles'));
    const submit = dialog.querySelector('button[type=submit]');
    submit.disabled = true;
    try {
      const created = await api('POST', PATHS[kind], body);
      const opener = openers.get(dialog);
      openers.set(dialog, null);
      closeDialog(dialog);
      showSecret(created, opener);
      load(kind);
    } catch (e) {
      if (!state.ended) fail(dialog, e.message);
    } finally {
      submit.disabled = false;
    }
  });

  // The secret, shown once.
  function showSecret(created, opener, title) {
    $('secret-title').textContent = title || 'Copy your new token';
    $('secret-client').textContent = created.clientId;
    $('secret-secret').textContent = created.secret;
    $('secret-curl').textContent = exchangeCommand(created.clientId, created.secret);
    $('secret-stored').checked = false;
    openDialog($('secret-dialog'), opener, $('secret-dialog').querySelector('[data-copy]'));
  }
  function secretCanClose() {
    if ($('secret-stored').checked) return true;
    fail($('secret-dialog'), 'Tick the box once you have stored the secret: it will not be shown again.');
    $('secret-stored').focus();
    return false;
  }
  $('secret-form').addEventListener('submit', (event) => {
    event.preventDefault();
    if (!secretCanClose()) return;
    $('secret-secret').textContent = '';
    $('secret-curl').textContent = '';
    closeDialog($('secret-dialog'));
  });
  $('secret-dialog').addEventListener('cancel', (event) => {
    event.preventDefault();
    if (secretCanClose()) {
      $('secret-secret').textContent = '';
      closeDialog($('secret-dialog'));
    }
  });
  for (const button of document.querySelectorAll('[data-copy]')) {
    button.addEventListener('click', async () => {
      const text = $(button.dataset.copy).textContent;
      try {
        await navigator.clipboard.writeText(text);
      } catch (e) {
        const range = document.createRange();
        range.selectNodeContents($(button.dataset.copy));
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        document.execCommand('copy');
      }
      button.textContent = 'Copied';
      announce('Copied');
      setTimeout(() => { button.textContent = 'Copy'; }, 2000);
    });
  }

  // Edit a tenant token.
  function openEdit(token, opener) {
    const dialog = $('edit-dialog');
    dialog.dataset.clientId = token.clientId;
    $('edit-client').textContent = 'Client ID ' + token.clientId;
    $('edit-description').value = token.description || '';
    roleChoices($('edit-roles').querySelector('.role-list'), token.roleIds || []);
    openDialog(dialog, opener, $('edit-description'));
  }
  $('edit-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const dialog = $('edit-dialog');
    const description = $('edit-description').value.trim();
    if (!description) return fail(dialog, 'Give the token a description.');
    const body = { description, roleIds: chosenRoles($('edit-roles')) };
    try {
      await api('PATCH', PATHS.tenant + '/' + encodeURIComponent(dialog.dataset.clientId), body);
      closeDialog(dialog);
      announce('Token saved');
      load('tenant');
    } catch (e) {
      if (e.status === 404) { closeDialog(dialog); load('tenant'); }
      if (!state.ended) fail(dialog, e.message);
    }
  });

  // Rotate: a new secret, shown once; the current one keeps working for the chosen time.
  function openRotate(kind, token, opener) {
    const dialog = $('rotate-dialog');
    dialog.dataset.kind = kind;
    dialog.dataset.clientId = token.clientId;
    const name = token.description ? '“' + token.description + '”' : 'this token';
    $('rotate-text').textContent = 'Give ' + name + ' (client ID ' + token.clientId + ') a new secret? Update everything that uses it before the current secret stops working.';
    openDialog(dialog, opener, $('rotate-grace'));
  }
  $('rotate-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const dialog = $('rotate-dialog');
    const kind = dialog.dataset.kind;
    const path = PATHS[kind] + '/' + encodeURIComponent(dialog.dataset.clientId) + '/rotate';
    try {
      const rotated = await api('POST', path, { graceMinutes: Number($('rotate-grace').value) });
      const opener = openers.get(dialog);
      openers.set(dialog, null);
      closeDialog(dialog);
      announce('Secret rotated');
      load(kind);
      showSecret(rotated, opener, 'Copy the new secret');
    } catch (e) {
      if (e.status === 404) { closeDialog(dialog); load(kind); return; }
      if (!state.ended) fail(dialog, e.message);
    }
  });

  // Delete.
  function openDelete(kind, token, opener) {
    const dialog = $('delete-dialog');
    dialog.dataset.kind = kind;
    dialog.dataset.clientId = token.clientId;
    const name = token.description ? '“' + token.description + '”' : 'this token';
    $('delete-text').textContent = 'Delete ' + name + ' (client ID ' + token.clientId + ')? Anything that uses it stops working at once. This cannot be undone.';
    openDialog(dialog, opener, dialog.querySelector('[data-close]'));
  }
  $('delete-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const dialog = $('delete-dialog');
    const kind = dialog.dataset.kind;
    try {
      await api('DELETE', PATHS[kind] + '/' + encodeURIComponent(dialog.dataset.clientId));
      openers.set(dialog, null);
      closeDialog(dialog);
      announce('Token deleted');
      await load(kind);
      const next = $('create-' + kind) || $('tab-' + kind);
      if (next) next.focus();
    } catch (e) {
      if (e.status === 404) { closeDialog(dialog); load(kind); return; }
      if (!state.ended) fail(dialog, e.message);
    }
  });

  // A token's use over the last 30 days: a bar chart of the JWTs issued each day (refusals
  // stacked above them), with a text alternative, and the same numbers as a table.
  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, ...children) {
    const el = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, value);
    for (const child of children) el.append(child);
    return el;
  }

  const refusedOf = (d) => d.refused.secret + d.refused.allowList + d.refused.rateLimit + d.refused.disabled;

  function usageSummary(days) {
    const issued = days.reduce((n, d) => n + d.issued, 0);
    const refused = days.reduce((n, d) => n + refusedOf(d), 0);
    return issued + ' JWTs issued and ' + refused + ' refused in the last 30 days';
  }

  // Days' use as an SVG of stacked bars (issued, then refused above), one a day, named by its
  // summary and each bar by its day's numbers.
  function usageBars(days, className, width, height) {
    const top = Math.max(1, ...days.map((d) => d.issued + refusedOf(d)));
    const bar = width / days.length;
    const chart = svg('svg', { viewBox: '0 0 ' + width + ' ' + height, class: className, role: 'img', 'aria-label': usageSummary(days) });
    days.forEach((d, i) => {
      const x = i * bar + bar * 0.1;
      const hIssued = (d.issued / top) * (height - 2);
      const hRefused = (refusedOf(d) / top) * (height - 2);
      const title = svg('title', {});
      title.textContent = d.date + ': ' + d.issued + ' issued, ' + refusedOf(d) + ' refused';
      chart.append(svg('g', {},
        title,
        svg('rect', { x, y: height - hIssued, width: bar * 0.8, height: hIssued, class: 'issued' }),
        svg('rect', { x, y: height - hIssued - hRefused, width: bar * 0.8, height: hRefused, class: 'refused' })));
    });
    return chart;
  }

  function usageChart(days) {
    const summary = usageSummary(days);
    const chart = usageBars(days, 'usage-chart', 300, 80);
    const rows = days.filter((d) => d.issued || refusedOf(d)).map((d) => h('tr', {},
      h('td', { text: d.date }), h('td', { text: String(d.issued) }), h('td', { text: String(d.refused.secret) }),
      h('td', { text: String(d.refused.allowList) }), h('td', { text: String(d.refused.rateLimit) }),
      h('td', { text: String(d.refused.disabled) })));
    const table = h('table', { class: 'usage-table' },
      h('caption', { text: 'Days with use' }),
      h('thead', {}, h('tr', {}, ['Date', 'Issued', 'Wrong secret', 'Outside allow-list', 'Rate limit', 'Switched off'].map((c) => h('th', { scope: 'col', text: c })))),
      h('tbody', {}, rows.length ? rows : [h('tr', {}, h('td', { colspan: '6', text: 'No use in the last 30 days' }))]));
    return [h('p', { id: 'usage-summary', text: summary + '.' }), chart,
      h('details', {}, h('summary', { text: 'Show as a table' }), table)];
  }

  async function openUsage(kind, token, opener) {
    const dialog = $('usage-dialog');
    $('usage-title').textContent = 'Usage of ' + (token.description || token.clientId);
    $('usage-body').replaceChildren(h('p', { class: 'muted', text: 'Loading…' }));
    openDialog(dialog, opener, dialog.querySelector('[data-close]'));
    try {
      const usage = await api('GET', PATHS[kind] + '/' + encodeURIComponent(token.clientId) + '/usage');
      $('usage-body').replaceChildren(...usageChart(usage.days));
    } catch (e) {
      if (!state.ended) fail(dialog, e.message);
    }
  }

  // Tabs: arrow keys move between them.
  for (const kind of VIEWS) {
    const tab = $('tab-' + kind);
    tab.addEventListener('click', () => selectTab(kind, false));
    tab.addEventListener('keydown', (event) => {
      const kinds = visibleKinds();
      const at = kinds.indexOf(kind);
      if (event.key === 'ArrowRight' || event.key === 'ArrowLeft') {
        event.preventDefault();
        const step = event.key === 'ArrowRight' ? 1 : kinds.length - 1;
        selectTab(kinds[(at + step) % kinds.length], true);
      }
    });
  }

  // The text colour that reads best on `hex`: white or near-black, whichever contrasts more.
  function inkOn(hex) {
    const channel = (i) => {
      const c = parseInt(hex.slice(i, i + 2), 16) / 255;
      return c <= 0.04045 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    };
    const luminance = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
    return (1.05 / (luminance + 0.05)) >= ((luminance + 0.05) / 0.055) ? '#ffffff' : '#111318';
  }

  // The vendor's brand, from the public configuration: its name, logo, accent colours (as
  // CSS custom properties: no inline style) and colour mode. The page's own look otherwise.
  async function applyBranding() {
    const root = document.documentElement;
    let branding = {};
    try {
      branding = (await (await fetch('/identity/resources/configurations/v1/public')).json()).branding || {};
    } catch (e) { /* the page's own look */ }
    root.dataset.theme = branding.theme || 'auto';
    const dark = branding.accentColorDark || branding.accentColor;
    if (branding.accentColor) {
      root.style.setProperty('--brand-accent', branding.accentColor);
      root.style.setProperty('--brand-accent-ink', inkOn(branding.accentColor));
    }
    if (dark) {
      root.style.setProperty('--brand-accent-dark', dark);
      root.style.setProperty('--brand-accent-dark-ink', inkOn(dark));
    }
    if (branding.displayName) {
      $('title').textContent = branding.displayName + ' API tokens';
      document.title = branding.displayName + ' · API tokens';
    }
    if (branding.logoUrl) {
      const logo = $('brand-logo');
      logo.src = branding.logoUrl;
      logo.alt = branding.displayName ? branding.displayName + ' logo' : 'Logo';
      logo.hidden = false;
    }
  }

  async function start() {
    await applyBranding();
    const match = /(?:^#|&)handoff=([^&]+)/.exec(location.hash);
    // The hand-off leaves the address bar and history at once.
    history.replaceState(null, '', location.pathname);
    if (!match) {
      showStatus('This page opens from your application. Go back to it and open the token page again.');
      return;
    }
    try {
      const session = await api('POST', '/portal/v1/sessions/handoff', { handoff: decodeURIComponent(match[1]) });
      state.session = session.accessToken;
      setTimeout(endSession, Math.max(0, session.expiresIn * 1000 - 5000));
      state.info = await api('GET', '/portal/v1/session');
    } catch (e) {
      if (e.status === 401) {
        state.ended = true;
        showStatus('This link has expired or was already used. Go back to your application and open the token page again.');
      } else {
        showStatus(e.message);
      }
      return;
    }
    const info = state.info;
    $('who').textContent = 'Signed in as ' + (info.userName || info.userId) + ' in ' + (info.tenantName || info.tenantId);
    if (!info.apiTokensEnabled) {
      showStatus('API tokens are turned off for your account by its administrator.');
      return;
    }
    const can = { personal: info.personalTokens, tenant: info.tenantTokens };
    for (const kind of ['personal', 'tenant']) {
      const shown = can[kind].enabled && can[kind].read;
      $('tab-' + kind).hidden = !shown;
      if (!shown) $('view-' + kind).hidden = true;
    }
    $('tab-activity').hidden = !info.readAudits;
    const kinds = visibleKinds();
    if (!kinds.length) {
      showStatus('You do not have permission to see any tokens or activity. Ask an administrator of your account.');
      return;
    }
    $('app').hidden = false;
    selectTab(kinds[0], false);
    await Promise.all(kinds.map(refresh));
  }

  start();
})();

// Cleave console: a hash router over a few screens that call the REST API (/api/v1) with the
// admin's API token as a Bearer token. Every value from the API reaches the page as a text
// node (el() below); nothing is ever parsed as HTML. The token lives in sessionStorage, so it
// goes with the tab; cookie sessions (issue 9) will replace the pasted token.

const TOKEN_KEY = 'cleave.token';
const main = document.getElementById('main');
const nav = document.getElementById('nav');

// Builds an element; string children become text nodes, attrs are set as properties/attributes.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function show(...nodes) {
  main.replaceChildren(...nodes);
}

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const res = await fetch(path, {
    headers: { Authorization: 'Bearer ' + token, Accept: 'application/json' },
    credentials: 'omit',
    cache: 'no-store',
  });
  let body = null;
  try {
    body = await res.json();
  } catch (e) {
    body = null;
  }
  if (!res.ok) {
    const why = body && (body.detail || body.title) ? body.detail || body.title : res.statusText;
    throw new ApiError(res.status, why);
  }
  return body;
}

function time(v, none = 'never') {
  return v ? new Date(v).toLocaleString() : none;
}

function compliance(c) {
  if (!c) return el('span', { class: 'muted' }, 'unknown');
  return c.compliant
    ? el('span', { class: 'ok' }, 'compliant')
    : el('span', { class: 'bad' }, 'not compliant');
}

function failure(err) {
  if (err instanceof ApiError && err.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    location.hash = '#/signin';
    return;
  }
  show(el('h1', {}, 'Something went wrong'), el('p', { class: 'error', role: 'alert' }, err.message));
}

function signinScreen() {
  const input = el('input', { type: 'password', id: 'token', autocomplete: 'off', required: '' });
  const msg = el('p', { class: 'muted' },
    'Paste an API token (a new server writes its first one to DATA/admin-token).');
  const form = el('form', { class: 'card', id: 'signin' },
    el('h1', {}, 'Sign in to Cleave'), msg,
    el('label', { for: 'token' }, 'API token'), el('p', {}, input),
    el('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    try {
      await api('/api/v1/devices?limit=1');
      location.hash = '#/devices';
    } catch (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      msg.className = 'error';
      msg.textContent = 'Sign-in failed: ' + err.message;
    }
  });
  show(form);
  input.focus();
}

async function devicesScreen(params) {
  const owner = params.get('owner') || '';
  const cursor = params.get('cursor') || '';
  const limit = /^[1-9][0-9]{0,2}$/.test(params.get('limit') || '') ? params.get('limit') : '50';
  const q = new URLSearchParams({ limit });
  if (owner) q.set('owner', owner);
  if (cursor) q.set('cursor', cursor);
  const search = el('input', { type: 'search', id: 'owner', name: 'owner', placeholder: 'owner email' });
  search.value = owner;
  const form = el('form', { class: 'inline', id: 'search' }, search,
    el('button', { type: 'submit' }, 'Search'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    if (search.value.trim()) p.set('owner', search.value.trim());
    location.hash = '#/devices' + (p.toString() ? '?' + p : '');
  });
  show(el('h1', {}, 'Devices'), form, el('p', { class: 'muted' }, 'Loading…'));
  const page = await api('/api/v1/devices?' + q);
  const rows = page.items.map((d) => el('tr', { 'data-id': d.id },
    el('td', { class: 'mono' }, el('a', { href: '#/devices/' + encodeURIComponent(d.id) }, d.id)),
    el('td', { class: 'owner' }, d.owner),
    el('td', {}, d.status),
    el('td', {}, d.corporate_state ? d.corporate_state.desired + ' / ' + d.corporate_state.reported : ''),
    el('td', {}, compliance(d.compliance)),
    el('td', {}, time(d.last_checkin_at))));
  const table = el('table', { id: 'devices' },
    el('thead', {}, el('tr', {}, ['Device', 'Owner', 'Status', 'Corporate state (desired / reported)',
      'Compliance', 'Last check-in'].map((h) => el('th', {}, h)))),
    el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: '6', class: 'muted' }, 'No devices.'))));
  const pager = el('div', { class: 'pager' });
  if (cursor) pager.append(el('button', { class: 'plain', type: 'button', onclick: () => history.back() }, 'Previous'));
  if (page.next_cursor) {
    const p = new URLSearchParams({ cursor: page.next_cursor });
    if (owner) p.set('owner', owner);
    if (limit !== '50') p.set('limit', limit);
    pager.append(el('a', { href: '#/devices?' + p, id: 'next' }, 'Next page'));
  }
  show(el('h1', {}, 'Devices'), form, table, pager);
}

function field(name, value) {
  return [el('dt', {}, name), el('dd', {}, value)];
}

async function deviceScreen(id) {
  show(el('h1', {}, 'Device'), el('p', { class: 'muted' }, 'Loading…'));
  const path = '/api/v1/devices/' + encodeURIComponent(id);
  const [d, cmds] = await Promise.all([api(path), api(path + '/commands?limit=50')]);
  const hv = d.hypervisor || {};
  const reasons = d.compliance && d.compliance.reasons ? d.compliance.reasons : [];
  const cmdRows = cmds.items.map((c) => el('tr', {},
    el('td', { class: 'mono' }, c.id), el('td', {}, c.type), el('td', {}, c.status),
    el('td', {}, c.reason), el('td', {}, time(c.created_at)), el('td', {}, time(c.completed_at, '—'))));
  show(
    el('p', {}, el('a', { href: '#/devices' }, '← All devices')),
    el('h1', {}, 'Device ', el('span', { class: 'mono' }, d.id)),
    el('dl', { class: 'fields', id: 'device' },
      field('Owner', el('span', { class: 'owner' }, d.owner)),
      field('Status', d.status),
      field('Model / OS', (d.model || '') + ' / ' + (d.os || '')),
      field('Agent version', d.agent_version),
      field('Enrolled', time(d.enrolled_at)),
      field('Last check-in', time(d.last_checkin_at)),
      field('Corporate state', d.corporate_state ? 'desired ' + d.corporate_state.desired +
        ', reported ' + d.corporate_state.reported : ''),
      field('Compliance', compliance(d.compliance)),
      field('Hypervisor key fingerprint', el('span', { class: 'mono' }, hv.key_fingerprint || '')),
      field('Attestation', hv.attestation || '')),
    el('h2', {}, 'Compliance reasons'),
    reasons.length ? el('ul', { id: 'reasons' }, reasons.map((r) => el('li', {}, r)))
      : el('p', { class: 'muted', id: 'reasons' }, 'None: the device is compliant.'),
    el('h2', {}, 'Commands'),
    el('table', { id: 'commands' },
      el('thead', {}, el('tr', {}, ['Command', 'Type', 'Status', 'Reason', 'Created', 'Completed']
        .map((h) => el('th', {}, h)))),
      el('tbody', {}, cmdRows.length ? cmdRows
        : el('tr', {}, el('td', { colspan: '6', class: 'muted' }, 'No commands.')))));
}

// Screens by URL: #/signin, #/devices[?owner=&cursor=&limit=], #/devices/ID.
async function route() {
  const hash = location.hash || '#/devices';
  const [path, query] = hash.slice(1).split('?');
  const params = new URLSearchParams(query || '');
  const signedIn = sessionStorage.getItem(TOKEN_KEY) !== null;
  nav.hidden = !signedIn;
  document.title = 'Cleave console';
  if (!signedIn || path === '/signin') return signinScreen();
  try {
    const m = path.match(/^\/devices\/([^/]+)$/);
    if (m) return await deviceScreen(decodeURIComponent(m[1]));
    if (path === '/devices' || path === '/') return await devicesScreen(params);
    show(el('h1', {}, 'Not found'), el('p', {}, 'No screen at ', el('span', { class: 'mono' }, path)));
  } catch (err) {
    failure(err);
  }
}

document.getElementById('signout').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  location.hash = '#/signin';
});
window.addEventListener('hashchange', route);
route();

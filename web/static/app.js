// Cleave console: the hash router. Each screen is a module in screens/ exporting
// render(params, match) (async); this file only maps URLs to screens, keeps the session and
// the navigation, and turns errors into a message (401 goes back to sign-in, and after it to
// the screen). /setup (the first-start link) shows the setup screen instead.

import { el, show, api, session, ApiError } from './lib.js';

// [pattern, module, title]. Order matters: the first match wins.
const routes = [
  [/^\/signin$/, './screens/signin.js', 'Sign in', 'public'],
  [/^\/(devices)?$/, './screens/devices.js', 'Devices'],
  [/^\/devices\/([^/]+)$/, './screens/device.js', 'Device'],
  [/^\/commands\/([^/]+)\/receipt$/, './screens/receipt.js', 'Receipt'],
  [/^\/commands$/, './screens/commands.js', 'Commands'],
  [/^\/bulk(?:\/([^/]+))?$/, './screens/bulk.js', 'Bulk operations'],
  [/^\/approvals(?:\/([^/]+))?$/, './screens/approvals.js', 'Approvals'],
  [/^\/dashboard$/, './screens/dashboard.js', 'Compliance'],
  [/^\/enrollment$/, './screens/enrollment.js', 'Enrollment'],
  [/^\/policies(?:\/([^/]+))?$/, './screens/policies.js', 'Policies'],
  [/^\/groups$/, './screens/groups.js', 'Groups'],
  [/^\/audit$/, './screens/audit.js', 'Audit log'],
  [/^\/admins$/, './screens/admins.js', 'Admins and tokens'],
  [/^\/webhooks(?:\/([^/]+))?$/, './screens/webhooks.js', 'Webhooks'],
];

const nav = document.getElementById('nav');

// Who is signed in, asked once per page load (the cookie is HttpOnly, so only the server knows).
async function whoami() {
  if (session.me) return session.me;
  try {
    session.me = await api('/api/v1/session');
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
    session.me = null;
  }
  return session.me;
}

// Set at sign-in, cleared at sign-out: a 401 then means the session ended (idle or maximum
// age, sign out everywhere, account disabled), not that nobody signed in on this tab yet.
const SIGNED_IN = 'cleave.signed-in';
const AFTER = 'cleave.after';

// To sign-in, and back to `back` (a "#/…" hash) once signed in again.
function toSignIn(back, ended) {
  session.me = null;
  if (back && !back.startsWith('#/signin')) sessionStorage.setItem(AFTER, back);
  sessionStorage.removeItem(SIGNED_IN);
  location.replace('/#/signin' + (ended ? '?expired=1' : ''));
}

function failure(err) {
  if (err instanceof ApiError && err.status === 401) {
    toSignIn(location.hash, true);
    return;
  }
  show(el('h1', {}, 'Something went wrong'),
    el('p', { class: 'error', role: 'alert' }, err.message));
}

// A 401 from an action a screen runs later (a button's handler) reaches here when the screen
// lets it through: the session ended while the screen was open.
window.addEventListener('unhandledrejection', (ev) => {
  if (ev.reason instanceof ApiError && ev.reason.status === 401) {
    ev.preventDefault();
    failure(ev.reason);
  }
});

// The first-start link PUBLIC_URL/setup#CODE: the code is the fragment (never sent to the
// server, so never in a log). The screen clears it from the address bar once it is used.
async function setup() {
  const code = location.hash.slice(1);
  if (code.startsWith('/')) { // a console link followed from the setup page
    location.replace('/' + location.hash);
    return;
  }
  nav.hidden = true;
  document.title = 'Set up - Cleave console';
  const mod = await import('./screens/setup.js');
  await mod.render(code, (signedIn) => {
    if (signedIn) sessionStorage.setItem(SIGNED_IN, '1');
    history.replaceState(null, '', signedIn ? '/#/devices' : '/#/signin');
    route();
  });
}

let generation = 0;

async function route() {
  const mine = ++generation;
  if (location.pathname === '/setup') {
    setup().catch(failure);
    return;
  }
  const hash = location.hash || '#/devices';
  const [path, query] = hash.slice(1).split('?');
  const params = new URLSearchParams(query || '');
  try {
    const r = routes.find(([re]) => re.test(path));
    const me = await whoami();
    if (mine !== generation) return;
    nav.hidden = !me;
    document.getElementById('who').textContent = me ? me.name + ' (' + me.role + ')' : '';
    for (const a of nav.querySelectorAll('a[href^="#/"]')) {
      // A receipt belongs to its device's story, not to the command queue.
      const section = /^\/commands\/[^/]+\/receipt$/.test(path) ? '/devices' : path;
      const href = a.getAttribute('href').slice(1);
      const here = section === href || section.startsWith(href + '/');
      if (here) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    if (!r) {
      show(el('h1', {}, 'Not found'), el('p', {}, 'No screen at ', el('span', { class: 'mono' }, path)));
      return;
    }
    if (!me && r[3] !== 'public') {
      toSignIn(hash, sessionStorage.getItem(SIGNED_IN) === '1');
      return;
    }
    document.title = r[2] + ' - Cleave console';
    const mod = await import(r[1]);
    if (mine !== generation) return;
    await mod.render(params, path.match(r[0]), () => mine === generation);
  } catch (err) {
    if (mine === generation) failure(err);
  }
}

document.getElementById('signout').addEventListener('click', async () => {
  try {
    await api('/api/v1/session', { method: 'DELETE' });
  } catch (e) {
    /* signed out either way */
  }
  session.me = null;
  sessionStorage.removeItem(SIGNED_IN);
  sessionStorage.removeItem(AFTER);
  location.hash = '#/signin';
});
window.addEventListener('hashchange', route);
route();

// Cleave console: the hash router. Each screen is a module in screens/ exporting
// render(params, match) (async); this file only maps URLs to screens, keeps the session and
// the navigation, and turns errors into a message (401 goes back to sign-in).

import { el, show, api, session, ApiError } from './lib.js';

// [pattern, module, title]. Order matters: the first match wins.
const routes = [
  [/^\/signin$/, './screens/signin.js', 'Sign in', 'public'],
  [/^\/setup$/, './screens/setup.js', 'Set up', 'public'],
  [/^\/(devices)?$/, './screens/devices.js', 'Devices'],
  [/^\/devices\/([^/]+)$/, './screens/device.js', 'Device'],
  [/^\/commands\/([^/]+)\/receipt$/, './screens/receipt.js', 'Receipt'],
  [/^\/commands$/, './screens/commands.js', 'Commands'],
  [/^\/dashboard$/, './screens/dashboard.js', 'Compliance'],
  [/^\/enrollment$/, './screens/enrollment.js', 'Enrollment'],
  [/^\/policies(?:\/([^/]+))?$/, './screens/policies.js', 'Policies'],
  [/^\/audit$/, './screens/audit.js', 'Audit log'],
  [/^\/admins$/, './screens/admins.js', 'Admins and tokens'],
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

function failure(err) {
  if (err instanceof ApiError && err.status === 401) {
    session.me = null;
    sessionStorage.setItem('cleave.after', location.hash);
    location.hash = '#/signin?expired=1';
    return;
  }
  show(el('h1', {}, 'Something went wrong'),
    el('p', { class: 'error', role: 'alert' }, err.message));
}

let generation = 0;

async function route() {
  const mine = ++generation;
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
      const here = ('#' + path).startsWith(a.getAttribute('href'));
      if (here) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    if (!r) {
      show(el('h1', {}, 'Not found'), el('p', {}, 'No screen at ', el('span', { class: 'mono' }, path)));
      return;
    }
    if (!me && r[3] !== 'public') {
      location.hash = '#/signin';
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
  location.hash = '#/signin';
});
window.addEventListener('hashchange', route);
route();

// Admins and API tokens (#/admins). Everyone sees their own account: set up an authenticator
// app (TOTP) and sign out everywhere. Admins and auditors see the console accounts and the API
// tokens; only admins create, disable, enroll an authenticator for others and revoke. The API
// checks every role again; this screen only leaves out what the role cannot do.
import { el, show, api, session, time, table, can, confirmTyped } from '../lib.js';

const ROLES = ['admin', 'helpdesk', 'auditor'];
const EXPIRY = [['1 day', 86400], ['7 days', 7 * 86400], ['30 days', 30 * 86400],
  ['90 days', 90 * 86400], ['1 year', 365 * 86400], ['never', 0]];

// A 401 is the session ending: let app.js take the admin to sign-in (and back here).
function rethrowExpired(err) {
  if (err && err.status === 401) throw err;
}

// The <p role=status> each form reports into.
function status(id) {
  const p = el('p', { id, role: 'status' });
  p.say = (cls, text) => {
    p.className = cls;
    p.setAttribute('role', cls === 'error' ? 'alert' : 'status');
    p.textContent = text;
  };
  return p;
}

function select(id, options, value) {
  const s = el('select', { id, name: id }, options.map(([label, v]) => el('option', { value: String(v) }, label)));
  s.value = String(value);
  return s;
}

// A secret shown once: the value as selectable text and a copy button.
function once(id, label, value) {
  const code = el('code', { id, class: 'mono secret' }, value);
  const note = el('span', { class: 'muted', role: 'status' });
  const copy = el('button', { type: 'button', class: 'plain', id: id + '-copy' }, 'Copy');
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(value);
      note.textContent = 'Copied.';
    } catch (e) {
      getSelection().selectAllChildren(code); // no clipboard access: select it for Ctrl+C
      note.textContent = 'Selected: press Ctrl+C to copy.';
    }
  });
  return el('div', { class: 'once' }, el('p', {}, label), el('p', {}, code), el('p', {}, copy, ' ', note));
}

// The otpauth:// URI of a new TOTP key, and its base32 secret to type into the app.
function totpPanel(account, uri) {
  let secret = '';
  try {
    secret = new URL(uri).searchParams.get('secret') || '';
  } catch (e) {
    secret = '';
  }
  return el('section', { class: 'card wide', id: 'totp-result', 'aria-labelledby': 'totp-title' },
    el('h2', { id: 'totp-title' }, 'Authenticator for ' + account),
    el('p', {}, 'Add this key to the authenticator app now: it is shown only once. From now on, ' +
      'signing in to this account needs the 6-digit code the app shows.'),
    once('totp-secret', 'Secret key (type it into the app, "enter a setup key"):', secret),
    once('totp-uri', 'Or the otpauth link, for apps and password managers that take one:', uri));
}

async function enrollTotp(a, out) {
  try {
    const r = await api('/api/v1/admins/' + encodeURIComponent(a.id) + '/totp', { method: 'POST' });
    out.replaceChildren(totpPanel(a.email || a.name, r.otpauth_uri));
    out.querySelector('#totp-title').scrollIntoView();
    return true;
  } catch (err) {
    rethrowExpired(err);
    out.replaceChildren(el('p', { class: 'error', role: 'alert' }, 'Cannot set up the authenticator: ' + err.message));
    return false;
  }
}

function mySection(out) {
  const me = session.me;
  const msg = status('me-msg');
  const everywhere = el('button', { type: 'button', id: 'signout-all', class: 'plain' }, 'Sign out everywhere');
  everywhere.addEventListener('click', async () => {
    try {
      await api('/api/v1/sessions', { method: 'DELETE' });
    } catch (err) {
      rethrowExpired(err);
      msg.say('error', 'Could not sign out everywhere: ' + err.message);
      return;
    }
    session.me = null;
    sessionStorage.removeItem('cleave.signed-in');
    location.hash = '#/signin';
  });
  const totp = el('button', { type: 'button', id: 'totp-self', class: 'plain' }, 'Set up an authenticator app');
  totp.addEventListener('click', () => enrollTotp({ id: me.id, name: me.name }, out));
  return el('section', { id: 'me', 'aria-labelledby': 'me-title' },
    el('h2', { id: 'me-title' }, 'Your account'),
    el('p', {}, 'Signed in as ', el('strong', {}, me.name), ' (' + me.role + ').'),
    el('p', { class: 'actions' }, totp, everywhere),
    el('p', { class: 'muted' }, 'An authenticator app adds a 6-digit code to your sign-in; setting it up again replaces the older key. ' +
      '"Sign out everywhere" ends every session of your account, in every browser, this one included.'),
    msg);
}

// Disable an account or revoke a token: the typed confirmation, then DELETE path; the screen
// reloads saying done, or says why not (failed: the message's start).
async function confirmDelete(confirm, path, out, reload, done, failed) {
  if (!await confirmTyped(confirm)) return;
  try {
    await api(path, { method: 'DELETE' });
  } catch (err) {
    rethrowExpired(err);
    reload(null, failed + ': ' + err.message);
    return;
  }
  out.replaceChildren(); // a secret shown before is not kept on screen
  reload(done);
}

function adminRow(a, out, reload) {
  const actions = el('td', { class: 'actions' });
  if (can('manage') && !a.disabled) {
    const totp = el('button', { type: 'button', class: 'plain totp' }, a.totp ? 'New authenticator key' : 'Enroll authenticator');
    totp.addEventListener('click', async () => { if (await enrollTotp(a, out)) reload(); });
    actions.append(totp);
    if (a.id !== session.me.id) {
      const off = el('button', { type: 'button', class: 'danger disable' }, 'Disable');
      off.addEventListener('click', () => confirmDelete({ title: 'Disable ' + a.email + '?',
        lines: ['The account can no longer sign in and its sessions end now. It stays in the list and the audit log.'],
        expect: a.email, action: 'Disable account' },
      '/api/v1/admins/' + encodeURIComponent(a.id), out, reload, 'Disabled ' + a.email + '.', 'Cannot disable'));
      actions.append(' ', off);
    }
  }
  return el('tr', { 'data-id': a.id, 'data-email': a.email },
    el('td', { class: 'email' }, a.email),
    el('td', { class: 'name' }, a.display_name),
    el('td', {}, a.role),
    el('td', {}, a.totp ? 'yes' : 'no'),
    el('td', {}, a.disabled ? el('span', { class: 'bad' }, 'disabled') : el('span', { class: 'ok' }, 'active')),
    el('td', {}, time(a.created_at)),
    actions);
}

function adminForm(reload) {
  const email = el('input', { type: 'email', id: 'new-email', autocomplete: 'off', required: true });
  const name = el('input', { type: 'text', id: 'new-name', autocomplete: 'off', required: true });
  const role = select('new-role', ROLES.map((r) => [r, r]), 'helpdesk');
  const pw = el('input', { type: 'password', id: 'new-password', autocomplete: 'new-password', required: true });
  const msg = status('new-admin-msg');
  const form = el('form', { id: 'admin-create', class: 'grid', novalidate: true },
    el('label', { for: 'new-email' }, 'Email'), email,
    el('label', { for: 'new-name' }, 'Display name'), name,
    el('label', { for: 'new-role' }, 'Role'), role,
    el('label', { for: 'new-password' }, 'First password'),
    el('span', {}, pw, el('span', { class: 'muted hint' }, ' at least 12 characters; give it to the person privately')),
    el('span', {}), el('span', {}, el('button', { type: 'submit' }, 'Create account')),
    msg);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('/api/v1/admins', { method: 'POST',
        body: { email: email.value.trim(), display_name: name.value.trim(), role: role.value, password: pw.value } });
    } catch (err) {
      rethrowExpired(err);
      msg.say('error', 'Cannot create the account: ' + err.message);
      return;
    }
    reload('Created ' + email.value.trim() + ' (' + role.value + ').');
  });
  return form;
}

function tokenRow(t, who, out, reload) {
  const actions = el('td', { class: 'actions' });
  if (can('manage') && t.active) {
    const revoke = el('button', { type: 'button', class: 'danger revoke' }, 'Revoke');
    revoke.addEventListener('click', () => confirmDelete({ title: 'Revoke the token ' + t.name + '?',
      lines: ['Scripts using it stop working at once. This cannot be undone.'],
      expect: t.name, action: 'Revoke token' },
    '/api/v1/tokens/' + encodeURIComponent(t.id), out, reload, 'Revoked ' + t.name + '.', 'Cannot revoke'));
    actions.append(revoke);
  }
  const state = t.revoked_at ? 'revoked' : t.active ? 'active' : 'expired';
  return el('tr', { 'data-id': t.id, 'data-name': t.name },
    el('td', { class: 'name' }, t.name),
    el('td', {}, t.role),
    el('td', {}, who.get(t.created_by) || t.created_by || ''),
    el('td', {}, time(t.created_at)),
    el('td', {}, time(t.expires_at, 'never')),
    el('td', {}, el('span', { class: state === 'active' ? 'ok' : 'bad' }, state)),
    actions);
}

function tokenForm(out, reload) {
  const name = el('input', { type: 'text', id: 'token-name', autocomplete: 'off', required: true, placeholder: 'what the script is' });
  const role = select('token-role', ROLES.map((r) => [r, r]), 'auditor');
  const exp = select('token-expiry', EXPIRY, 90 * 86400);
  // The two-person rule's separate permission: only for admin tokens; the server also wants
  // this session to have its second factor (TOTP) done, and says so when it has not.
  const approve = el('input', { type: 'checkbox', id: 'token-approve', disabled: true });
  role.addEventListener('change', () => {
    approve.disabled = role.value !== 'admin';
    if (approve.disabled) approve.checked = false;
  });
  const msg = status('new-token-msg');
  const form = el('form', { id: 'token-create', class: 'grid', novalidate: true },
    el('label', { for: 'token-name' }, 'Name'), name,
    el('label', { for: 'token-role' }, 'Role'), role,
    el('label', { for: 'token-expiry' }, 'Expires after'), exp,
    el('label', { for: 'token-approve' }, 'May approve'),
    el('span', {}, approve, el('span', { class: 'muted small' }, ' approvals of the two-person rule (admin tokens)')),
    el('span', {}), el('span', {}, el('button', { type: 'submit' }, 'Create token')),
    msg);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { name: name.value.trim(), role: role.value };
    if (exp.value !== '0') body.expires_in = Number(exp.value);
    if (approve.checked) body.permissions = ['approve'];
    let t;
    try {
      t = await api('/api/v1/tokens', { method: 'POST', body });
    } catch (err) {
      rethrowExpired(err);
      msg.say('error', 'Cannot create the token: ' + err.message);
      return;
    }
    await reload('Created the token ' + t.name + '.');
    out.replaceChildren(el('section', { class: 'card wide', id: 'token-result', 'aria-labelledby': 'token-title' },
      el('h2', { id: 'token-title' }, 'New API token: ' + t.name),
      once('token-secret', 'Copy the token now: it is shown only this once. Scripts send it as "Authorization: Bearer TOKEN".', t.token)));
    out.querySelector('#token-title').scrollIntoView();
  });
  return form;
}

export async function render(params, match, current) {
  const out = el('div', { id: 'admins-result', 'aria-live': 'polite' });
  const note = status('admins-msg');
  const parts = [el('h1', {}, 'Admins and API tokens'), note, out, mySection(out)];
  const load = async (said, bad) => {
    const mayList = can('read') && session.me.role !== 'helpdesk';
    const [admins, tokens] = mayList
      ? await Promise.all([api('/api/v1/admins'), api('/api/v1/tokens?limit=200')])
      : [null, null];
    if (!current()) return;
    if (bad) note.say('error', bad);
    else note.say('muted', said || '');
    const reload = (s, b) => load(s, b);
    const body = [...parts];
    // Tokens name their creator by account id: show the email instead.
    const who = new Map((admins ? admins.items : []).map((a) => [a.id, a.email]));
    if (!mayList) {
      body.push(el('p', { class: 'muted', id: 'admins-none' },
        'Console accounts and API tokens are managed by admins and visible to auditors.'));
    } else {
      body.push(el('section', { 'aria-labelledby': 'admins-title' },
        el('h2', { id: 'admins-title' }, 'Console accounts'),
        table('admins', ['Email', 'Name', 'Role', 'Authenticator', 'Status', 'Created', ''],
          admins.items.map((a) => adminRow(a, out, reload)), 'No accounts.'),
        can('manage') ? [el('h2', {}, 'New console account'), adminForm(reload)] : null));
      body.push(el('section', { 'aria-labelledby': 'tokens-title' },
        el('h2', { id: 'tokens-title' }, 'API tokens'),
        el('p', { class: 'muted' }, 'For scripts and integrations: the same roles as console accounts.'),
        table('tokens', ['Name', 'Role', 'Created by', 'Created', 'Expires', 'Status', ''],
          tokens.items.map((t) => tokenRow(t, who, out, reload)), 'No tokens.'),
        can('manage') ? [el('h2', {}, 'New API token'), tokenForm(out, reload)] : null));
    }
    show(...body);
  };
  await load();
}

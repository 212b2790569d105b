// First start: the one-time link PUBLIC_URL/setup#CODE that cleave-server wrote to
// DATA/admin-setup. The first admin chooses an email, a display name and a password here, and
// is signed in with them. render(code, done): done(signedIn) leaves the page (app.js clears the
// code from the address bar and goes on to the device list or to sign-in).
import { el, show, api, session } from '../lib.js';

const MIN_PASSWORD = 12;

function input(id, type, autocomplete, extra) {
  return el('input', { type, id, name: id, autocomplete, required: true, ...(extra || {}) });
}

// What to tell the admin for each answer of POST /api/v1/setup.
function explain(err) {
  if (err.status === 401)
    return ['This setup link is not valid, or it was used already. Open the link in the ',
      'admin-setup file of the server\'s data folder again; if an admin account exists already, ',
      el('a', { href: '/#/signin' }, 'sign in'), ' instead.'];
  if (err.status === 409)
    return ['An admin account was created meanwhile, so this setup link no longer works. ',
      el('a', { href: '/#/signin' }, 'Sign in'), ' with that account instead.'];
  if (err.status === 422) return ['Please check the form: ' + err.message + '.'];
  if (err.status === 429) return ['Too many refused requests from this address. Wait a minute and try again.'];
  if (err.status === 415 || err.status === 400) return ['The request was refused: ' + err.message + '.'];
  return ['Setup failed: ' + err.message];
}

export async function render(code, done) {
  const msg = el('p', { id: 'setup-msg', role: 'status' });
  const say = (cls, ...parts) => {
    msg.className = cls;
    msg.setAttribute('role', cls === 'error' ? 'alert' : 'status');
    msg.replaceChildren(...parts.flat().map((p) => (p instanceof Node ? p : document.createTextNode(p))));
  };
  if (!/^[A-Za-z0-9_-]{8,200}$/.test(code)) {
    say('error', 'This page needs the whole setup link, with the code after "#". cleave-server wrote it to ',
      el('span', { class: 'mono' }, 'admin-setup'), ' in its data folder (',
      el('span', { class: 'mono' }, 'make run'), ' says where). If an admin account exists already, ',
      el('a', { href: '/#/signin' }, 'sign in'), ' instead.');
    show(el('section', { class: 'card', id: 'setup' }, el('h1', {}, 'Set up Cleave'), msg));
    return;
  }
  const email = input('setup-email', 'email', 'username');
  const name = input('setup-name', 'text', 'name', { maxlength: '200' });
  const pw = input('setup-password', 'password', 'new-password', { 'aria-describedby': 'setup-pw-hint' });
  const pw2 = input('setup-password2', 'password', 'new-password');
  const submit = el('button', { type: 'submit' }, 'Create the admin account');
  const form = el('form', { class: 'card', id: 'setup', novalidate: true },
    el('h1', {}, 'Set up Cleave'),
    el('p', {}, 'No admin account exists yet. Create the first one: it can manage devices, other admins and API tokens.'),
    msg,
    el('label', { for: 'setup-email' }, 'Email'), el('p', {}, email),
    el('label', { for: 'setup-name' }, 'Display name'), el('p', {}, name),
    el('label', { for: 'setup-password' }, 'Password'), el('p', {}, pw),
    el('p', { class: 'muted hint', id: 'setup-pw-hint' },
      'At least ' + MIN_PASSWORD + ' characters. A few unrelated words are easy to type and hard to guess.'),
    el('label', { for: 'setup-password2' }, 'Password again'), el('p', {}, pw2),
    submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!email.value.trim() || !name.value.trim()) {
      say('error', 'Please fill in the email and the display name.');
      (email.value.trim() ? name : email).focus();
      return;
    }
    if (pw.value.length < MIN_PASSWORD) {
      say('error', 'The password is too short: use at least ' + MIN_PASSWORD + ' characters.');
      pw.focus();
      return;
    }
    if (pw.value !== pw2.value) {
      say('error', 'The two passwords differ. Please type the same password twice.');
      pw2.value = '';
      pw2.focus();
      return;
    }
    submit.disabled = true;
    say('muted', 'Creating the account…');
    const creds = { email: email.value.trim(), password: pw.value };
    try {
      await api('/api/v1/setup', { method: 'POST', body: { code, display_name: name.value.trim(), ...creds } });
    } catch (err) {
      // 401 and 409: this code is spent; anything else can be corrected and sent again.
      submit.disabled = err.status === 401 || err.status === 409;
      say('error', explain(err));
      return;
    }
    pw.value = pw2.value = '';
    // The account exists and the code is spent: sign in with it (a server that requires a
    // second factor refuses this, and the admin signs in after setting one up).
    try {
      const a = await api('/api/v1/session', { method: 'POST', body: creds });
      session.me = { id: a.id, name: a.display_name, role: a.role, csrf_token: a.csrf_token, via: 'session' };
      done(true);
    } catch (err) {
      done(false);
    }
  });
  show(form);
  email.focus();
}

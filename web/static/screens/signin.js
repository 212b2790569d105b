// Sign-in with email and password (and the authenticator code when the account has one).
// The server sets the HttpOnly session cookie; the CSRF token from the reply is kept in memory.
// With single sign-on configured, a "Sign in with <provider>" link comes first.
import { el, show, api, session } from '../lib.js';

export async function render(params) {
  const email = el('input', { type: 'email', id: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = el('input', { type: 'password', id: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const totp = el('input', { type: 'text', id: 'totp', name: 'totp', inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', maxlength: '6' });
  const msg = el('p', { class: params.get('expired') ? 'notice' : 'muted', id: 'signin-msg', role: 'status' },
    params.get('expired') ? 'Your session has ended. Please sign in again; you will return to where you were.' : '');
  const form = el('form', { class: 'card', id: 'signin' },
    el('h1', {}, 'Sign in to Cleave'), msg,
    el('label', { for: 'email' }, 'Email'), el('p', {}, email),
    el('label', { for: 'password' }, 'Password'), el('p', {}, password),
    el('label', { for: 'totp' }, 'Authenticator code (if your account has one)'), el('p', {}, totp),
    el('button', { type: 'submit' }, 'Sign in'),
    el('p', { class: 'muted' }, 'First time here? The first admin opens the setup link that cleave-server wrote to the file admin-setup in its data folder (make run prints where), and sets a password there.'));
  // Single sign-on, when the server has a provider: a plain link (a top-level navigation to the
  // provider and back); the local form stays below it for break-glass accounts.
  let sso = null;
  try {
    sso = await api('/api/v1/oidc');
  } catch (err) {
    sso = null; // an older server without the route: password sign-in only
  }
  if (sso && sso.enabled) {
    msg.after(
      el('p', { id: 'sso' },
        el('a', { class: 'button', id: 'sso-link', href: '/api/v1/oidc/login' }, 'Sign in with ' + sso.provider_name)),
      el('p', { class: 'muted', id: 'sso-or' }, 'Or with a Cleave account of its own:'));
  }
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { email: email.value.trim(), password: password.value };
    if (totp.value.trim()) body.totp = totp.value.trim();
    try {
      const a = await api('/api/v1/session', { method: 'POST', body });
      session.me = { id: a.id, name: a.display_name, role: a.role, csrf_token: a.csrf_token, via: 'session' };
      password.value = '';
      sessionStorage.setItem('cleave.signed-in', '1'); // a later 401 means the session ended
      const after = sessionStorage.getItem('cleave.after');
      sessionStorage.removeItem('cleave.after');
      // Replaces the sign-in entry: back from the screen does not lead to sign-in again.
      location.replace(after && after.startsWith('#/') && !after.startsWith('#/signin') ? after : '#/devices');
    } catch (err) {
      msg.className = 'error';
      msg.setAttribute('role', 'alert');
      msg.textContent = err.status === 429
        ? 'Too many failed sign-in attempts from this address. Wait a minute and try again.'
        : 'Sign-in failed: ' + err.message;
      password.value = '';
      password.focus();
    }
  });
  show(form);
  email.focus();
}

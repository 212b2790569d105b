// Enrollment: create enrollment tokens (owner, uses, expiry), show a new one as its link and QR
// code, list them with their status, revoke. The token's secret comes back only in the create
// answer, so the link and QR are shown once, here; the QR image is drawn by the server
// (GET /enroll/qr.svg?token=…), which draws it only while the token can still enroll.
import { el, show, api, time, can, table } from '../lib.js';

const DAY = 86400;

function status(t) {
  if (t.revoked_at) return 'revoked';
  if (new Date(t.expires_at).getTime() <= Date.now()) return 'expired';
  if (t.uses >= t.uses_max) return 'used up';
  return 'active';
}

// The card of a token just made: its link, QR code (SVG shown, PNG to download) and a note.
function created(t) {
  const q = new URLSearchParams({ token: t.token });
  return el('section', { class: 'card new-token', id: 'new-token', 'aria-live': 'polite' },
    el('h2', {}, 'Enrollment link for ', el('span', { class: 'owner' }, t.owner)),
    el('p', {}, el('a', { href: t.enroll_url, id: 'new-link', class: 'mono', target: '_blank', rel: 'noopener noreferrer' }, t.enroll_url)),
    el('img', { src: '/enroll/qr.svg?' + q, id: 'new-qr', class: 'qr', alt: 'QR code of the enrollment link for ' + t.owner, width: '240', height: '240' }),
    el('p', {}, el('a', { href: '/enroll/qr.png?' + q, download: 'enroll-qr.png', id: 'new-qr-png' }, 'Download the QR code (PNG)')),
    el('p', { class: 'muted' }, 'Send this link (or show the QR code) to ' + t.owner + '. It can enroll ' +
      t.uses_max + ' device' + (t.uses_max === 1 ? '' : 's') + ' until ' + time(t.expires_at) +
      '. It is shown only now: the server keeps only its hash.'));
}

function form(onDone) {
  const owner = el('input', { type: 'text', inputmode: 'email', autocomplete: 'off', spellcheck: 'false', id: 'et-owner', name: 'owner', required: true, placeholder: 'employee@example.com' });
  const uses = el('input', { type: 'number', id: 'et-uses', name: 'uses', min: '1', max: '100000', value: '1', required: true });
  const expiry = el('select', { id: 'et-expiry', name: 'expires_in' },
    [[1, '1 day'], [7, '7 days'], [30, '30 days'], [90, '90 days']].map(([d, label]) =>
      el('option', { value: String(d * DAY), selected: d === 7 }, label)));
  const problem = el('p', { class: 'error', id: 'et-error', role: 'alert', hidden: true });
  const f = el('form', { id: 'et-form', class: 'et-form' },
    el('label', { for: 'et-owner' }, 'Owner (email)'), owner,
    el('label', { for: 'et-uses' }, 'Devices it may enroll'), uses,
    el('label', { for: 'et-expiry' }, 'Expires after'), expiry,
    el('span'), el('button', { type: 'submit', id: 'et-create' }, 'Create enrollment link'));
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    problem.hidden = true;
    try {
      const t = await api('/api/v1/enrollment-tokens', {
        method: 'POST',
        body: { owner: owner.value.trim(), uses: Number(uses.value), expires_in: Number(expiry.value) },
      });
      owner.value = '';
      await onDone(t);
    } catch (err) {
      problem.textContent = err.message;
      problem.hidden = false;
    }
  });
  return [f, problem];
}

async function list(onChange) {
  const page = await api('/api/v1/enrollment-tokens?limit=200');
  const rows = page.items.slice().reverse().map((t) => {
    const st = status(t);
    const revoke = can('enroll') && st === 'active'
      ? el('button', { type: 'button', class: 'plain revoke', 'aria-label': 'Revoke the link for ' + t.owner,
        onclick: async () => { await api('/api/v1/enrollment-tokens/' + encodeURIComponent(t.id), { method: 'DELETE' }); await onChange(); } },
      'Revoke')
      : '';
    return el('tr', { 'data-id': t.id },
      el('td', { class: 'owner' }, t.owner),
      el('td', { class: 'status' }, st),
      el('td', {}, String(Math.max(0, t.uses_max - t.uses)) + ' of ' + t.uses_max),
      el('td', {}, time(t.expires_at)),
      el('td', { class: 'mono' }, t.created_by),
      el('td', {}, revoke));
  });
  const more = page.next_cursor ? el('p', { class: 'muted' }, 'Showing the first 200 links.') : '';
  return [table('etokens', ['Owner', 'Status', 'Uses left', 'Expires', 'Created by', ''], rows, 'No enrollment links yet.'), more];
}

export async function render() {
  let fresh = null;
  const draw = async () => {
    const parts = [el('h1', {}, 'Enrollment')];
    if (can('enroll')) parts.push(...form(async (t) => { fresh = t; await draw(); }));
    if (fresh) parts.push(created(fresh));
    parts.push(el('h2', {}, 'Enrollment links'), ...(await list(draw)));
    show(...parts);
    if (fresh) document.getElementById('new-link').focus();
  };
  await draw();
}

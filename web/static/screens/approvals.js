// The two-person rule's requests: a wipe, a retire or a large bulk that waits for a second
// admin. The list (newest first, pending by default, ?status= in the URL, cursor paging) and
// one request at #/approvals/ID with its devices. Approve is offered to admins who may approve
// (GET /api/v1/server's can_approve: a session with TOTP) for others' requests; reject to
// admins; cancel to the requester; the emergency override to admins, with a reason, through
// its own dialog. The API checks everything again (403 approval-by-requester and so on).
import { el, show, api, age, time, table, can, session, who, ApiError } from '../lib.js';

const STATUSES = ['pending', 'approved', 'rejected', 'canceled', 'expired', 'overridden'];
const HEADINGS = ['Requested', 'Type', 'Devices', 'Reason', 'Requested by', 'Status', 'Expires or decided', 'Actions'];
let flash = '';

function devices(a) {
  if (a.kind === 'bulk' || a.kind === 'filter') return el('a', { href: '#/approvals/' + encodeURIComponent(a.id) }, a.device_count + ' devices');
  return el('a', { class: 'mono', href: '#/devices/' + encodeURIComponent(a.device_id) }, a.device_id);
}

function statusCell(a) {
  const cls = a.status === 'pending' ? 'waiting' : a.status === 'approved' ? 'ok' : a.status === 'overridden' ? 'bad' : 'muted';
  return el('td', { class: 'status ' + cls }, a.status);
}

// The override's dialog: a reason of at least 10 characters; resolves to it, or null.
function askReason(a) {
  return new Promise((resolve) => {
    const input = el('textarea', { id: 'override-reason', rows: '3', maxlength: '380' });
    const ok = el('button', { type: 'submit', id: 'override-ok', class: 'danger', disabled: true }, 'Override and send now');
    const cancel = el('button', { type: 'button', id: 'override-cancel', class: 'plain' }, 'Cancel');
    const form = el('form', { method: 'dialog' },
      el('h2', { id: 'override-title' }, 'Emergency override'),
      el('p', {}, 'The ' + a.type + ' is sent at once, without a second admin. The override is ' +
        'recorded in the audit log under your name with the reason, and announced.'),
      el('label', { for: 'override-reason' }, 'Reason (at least 10 characters)'),
      el('p', {}, input),
      el('p', { class: 'actions' }, ok, cancel));
    const dlg = el('dialog', { id: 'override', class: 'confirm', 'aria-labelledby': 'override-title' }, form);
    let done = false;
    const finish = (v) => {
      if (done) return;
      done = true;
      dlg.close();
      dlg.remove();
      resolve(v);
    };
    input.addEventListener('input', () => { ok.disabled = input.value.trim().length < 10; });
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (input.value.trim().length >= 10) finish(input.value.trim());
    });
    cancel.addEventListener('click', () => finish(null));
    dlg.addEventListener('close', () => finish(null));
    document.body.append(dlg);
    dlg.showModal();
    input.focus();
  });
}

// The buttons a signed-in admin gets for a request; run(what, body) posts the decision.
function actions(a, server, run) {
  const td = el('td', { class: 'actions' });
  if (a.status !== 'pending') return td;
  const mine = session.me && a.requested_by === session.me.id;
  const button = (what, label, cls) => el('button', { type: 'button', class: cls + ' small ' + what,
    'aria-label': label + ' ' + a.type + ' ' + a.id }, label);
  if (can('wipe') && server.can_approve && !mine) {
    const b = button('approve', 'Approve', 'primary');
    b.addEventListener('click', () => run(a, 'approve', {}, b));
    td.append(b);
  }
  if (can('wipe') && !mine) {
    const b = button('reject', 'Reject', 'plain');
    b.addEventListener('click', () => run(a, 'reject', {}, b));
    td.append(b);
  }
  if (mine) {
    const b = button('cancel', 'Cancel', 'plain');
    b.addEventListener('click', () => run(a, 'cancel', {}, b));
    td.append(b);
  }
  if (can('wipe')) {
    const b = button('override', 'Emergency override', 'plain danger-text');
    b.addEventListener('click', async () => {
      const reason = await askReason(a);
      if (reason) await run(a, 'override', { reason }, b);
      else b.focus();
    });
    td.append(b);
  }
  return td;
}

function row(a, server, run) {
  return el('tr', { 'data-id': a.id, 'data-status': a.status },
    el('td', { title: time(a.created_at) }, age(a.created_at)),
    el('td', {}, a.type),
    el('td', {}, devices(a)),
    el('td', { class: 'reason' }, a.reason || ''),
    el('td', { class: 'requester' }, who(a.requested_by, a.requested_by_name)),
    statusCell(a),
    el('td', { class: 'decision' }, a.status === 'pending' ? 'expires ' + time(a.expires_at)
      : a.decided_by ? [a.status + ' by ', who(a.decided_by, a.decided_by_name), a.note ? ': ' + a.note : ''] : ''),
    actions(a, server, run));
}

function intro(server) {
  const rule = server.two_person_rule || {};
  const lines = [el('p', { class: 'muted', id: 'rule' }, rule.enabled
    ? 'Two-person rule on: wipe, retire and bulks of more than ' + rule.bulk_size +
      ' devices wait for a second admin, at most ' + Math.round(rule.expiry_seconds / 3600) + ' h.'
    : 'The two-person rule is off on this server: commands are queued at once.')];
  if (can('wipe') && !server.can_approve)
    lines.push(el('p', { class: 'pending', id: 'no-approve' }, 'You cannot approve: approving needs a ' +
      'session signed in with a TOTP code. Enroll TOTP for your account (Admins) and sign in again.'));
  return lines;
}

export async function render(params, match, current) {
  const id = match[1] ? decodeURIComponent(match[1]) : '';
  show(el('h1', {}, 'Approvals'), el('p', { class: 'muted' }, 'Loading…'));
  const server = await api('/api/v1/server');
  const msg = el('p', { id: 'approval-msg', role: 'status', tabindex: '-1' }, flash);
  flash = '';
  const run = async (a, what, body, btn) => {
    btn.disabled = true;
    try {
      await api('/api/v1/approvals/' + encodeURIComponent(a.id) + '/' + what, { method: 'POST', body });
      if (!current()) return;
      flash = { approve: 'Approved', reject: 'Rejected', cancel: 'Canceled', override: 'Overridden: sent' }[what] +
        ' ' + a.type + ' (' + a.id + ').';
      await render(params, match, current);
      document.getElementById('approval-msg')?.focus();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) throw err;
      btn.disabled = false;
      msg.className = 'error';
      msg.textContent = err.message;
      msg.focus();
    }
  };
  if (id) {
    const a = await api('/api/v1/approvals/' + encodeURIComponent(id));
    if (!current()) return;
    const t = table('approvals', HEADINGS, [row(a, server, run)], '');
    show(...[el('p', {}, el('a', { href: '#/approvals' }, '← All approval requests')),
      el('h1', {}, 'Approval request ', el('span', { class: 'mono' }, a.id)), ...intro(server), msg, t,
      a.device_ids ? el('h2', {}, 'Devices') : null,
      a.device_ids ? el('ul', { id: 'approval-devices', class: 'mono' },
        a.device_ids.map((d) => el('li', {}, el('a', { href: '#/devices/' + encodeURIComponent(d) }, d)))) : null,
      a.command_id ? el('p', {}, 'Queued as ', el('a', { class: 'mono', href: '#/commands?device=' +
        encodeURIComponent(a.device_id) }, a.command_id), '.') : null,
      a.bulk_id ? el('p', {}, 'A bulk by filter: ', el('a', { id: 'approval-bulk', class: 'mono',
        href: '#/bulk/' + encodeURIComponent(a.bulk_id) }, a.bulk_id),
      a.status === 'pending' ? ' starts once approved.' : '.') : null].filter(Boolean));
    return;
  }
  const status = params.has('status') ? params.get('status') : 'pending';
  const q = new URLSearchParams({ limit: '50' });
  if (STATUSES.includes(status)) q.set('status', status);
  if (params.get('cursor')) q.set('cursor', params.get('cursor'));
  const page = await api('/api/v1/approvals?' + q);
  if (!current()) return;
  const sel = el('select', { id: 'f-status', name: 'status' }, el('option', { value: '' }, 'any'),
    STATUSES.map((v) => el('option', { value: v }, v)));
  sel.value = STATUSES.includes(status) ? status : '';
  const form = el('form', { id: 'approval-filter', class: 'filters' },
    el('label', { class: 'filter', for: 'f-status' }, 'Status', sel),
    el('span', { class: 'filter-actions' }, el('button', { type: 'submit' }, 'Filter')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    location.hash = '#/approvals?status=' + encodeURIComponent(sel.value);
  });
  const t = table('approvals', HEADINGS,
    page.items.map((a) => row(a, server, run)), 'No approval requests match.');
  t.dataset.hash = location.hash;
  const pager = el('div', { class: 'pager' });
  if (page.next_cursor) {
    const p = new URLSearchParams(params);
    p.set('cursor', page.next_cursor);
    pager.append(el('a', { href: '#/approvals?' + p, id: 'next' }, 'Next page'));
  }
  show(el('h1', {}, 'Approvals'), ...intro(server), form, msg, t, pager);
}

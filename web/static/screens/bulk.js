// Bulk operations by filter (#/bulk, #/bulk/{id}): the list newest first, filtered by state,
// cursor paging in the URL (GET /api/v1/commands/bulk); one bulk's live progress, polled while
// it runs and this screen is shown, and a Cancel button for those whose role may order its type
// (POST /api/v1/commands/bulk/{id}/cancel). The devices screen comes here after "Select all N
// matching". A cancel stops the bulk before its next batch; what it queued stays queued.
import { el, show, api, age, time, table, can, field } from '../lib.js';

const STATES = ['running', 'done', 'canceled', 'refused', 'awaiting'];
const POLL_MS = 500;

const done = (b) => b.queued + b.already_pending + b.skipped;

function stateCell(b) {
  const cls = b.state === 'done' ? 'ok' : b.state === 'running' ? '' : 'bad';
  return el('span', { class: 'bulk-state ' + cls }, b.state);
}

// The filter as "owner = x, status = active" (every value inserted as text).
function filterText(f) {
  const parts = Object.entries(f || {}).filter(([, v]) => v !== null && v !== '')
    .map(([k, v]) => k + ' = ' + (Array.isArray(v) ? v.join(',') : v));
  return parts.length ? parts.join(', ') : 'every device';
}

function progressView(b) {
  const n = done(b);
  const ended = b.state !== 'running' && b.state !== 'awaiting';
  const words = { running: 'running', done: 'done', canceled: 'canceled', refused: 'refused',
    awaiting: 'waiting for approval by a second admin' };
  return el('section', { id: 'bulk-progress', class: 'card wide', 'aria-live': 'polite', 'data-state': b.state },
    el('h2', {}, 'Bulk ' + b.type + ' of ' + b.expected_count + ' matching devices: ' + (words[b.state] || b.state)),
    el('progress', { max: String(Math.max(b.expected_count, n)), value: String(n) }),
    el('p', { id: 'bulk-counts' }, n + ' done: ' + b.queued + ' queued, ' + b.already_pending +
      ' already pending, ' + b.skipped + ' skipped (retired or gone)'),
    b.state === 'running'
      ? el('p', { class: 'muted small' }, 'Each device gets its own signed command; parked devices are woken as it goes.')
      : null,
    b.state === 'awaiting'
      ? el('p', { id: 'bulk-awaiting', class: 'pending' }, 'The two-person rule holds this bulk: nothing is sent until a ' +
        'second admin approves it. ', el('a', { href: '#/approvals?status=pending' }, 'Pending approvals'))
      : null,
    ended && b.state !== 'done'
      ? el('p', { id: 'bulk-ended', class: 'notice' },
        (b.state === 'canceled' ? 'Canceled' : 'Stopped: ' + (b.end_reason || 'the requester may no longer do this')) +
        '. The devices it had not reached' + (b.expected_count - n > 0 ? ' (up to ' + (b.expected_count - n) + ')' : '') + ' get nothing; the ' +
        b.queued + ' commands already queued stay queued. ',
        b.queued > 0 ? el('a', { href: '#/commands?type=' + encodeURIComponent(b.type) + '&status=queued' },
          'Queued ' + b.type + ' commands') : null)
      : null);
}

// A plain confirmation in the page (a modal <dialog>; no window.confirm): resolves true on OK.
function confirmPlain(title, lines, action) {
  return new Promise((resolve) => {
    const ok = el('button', { type: 'submit', id: 'confirm-ok', class: 'danger' }, action);
    const no = el('button', { type: 'button', id: 'confirm-cancel', class: 'plain' }, 'Keep it running');
    const form = el('form', { method: 'dialog' }, el('h2', { id: 'confirm-title' }, title),
      lines.map((l) => el('p', {}, l)), el('p', { class: 'actions' }, ok, no));
    const dlg = el('dialog', { id: 'confirm', 'aria-labelledby': 'confirm-title' }, form);
    let over = false;
    const finish = (v) => {
      if (over) return;
      over = true;
      dlg.close();
      dlg.remove();
      resolve(v);
    };
    form.addEventListener('submit', (ev) => { ev.preventDefault(); finish(true); });
    no.addEventListener('click', () => finish(false));
    dlg.addEventListener('close', () => finish(false));
    document.body.append(dlg);
    dlg.showModal();
    no.focus();
  });
}

function details(b) {
  return el('dl', { class: 'fields', id: 'bulk-fields' },
    field('Bulk', el('span', { class: 'mono' }, b.id)),
    field('Type', b.type),
    field('Devices', filterText(b.filter)),
    field('Reason', b.reason || el('span', { class: 'muted' }, 'none given')),
    field('Requested by', el('span', { class: 'mono' }, b.requested_by)),
    field('Started', time(b.created_at) + ' (' + age(b.created_at) + ')'),
    field('Last progress', time(b.updated_at)),
    field('Ended', b.finished_at ? time(b.finished_at) : 'not yet'),
    b.state === 'canceled' ? field('Canceled by', el('span', { class: 'mono' }, b.ended_by || '')) : null,
    b.state === 'refused' ? field('Refused because', b.end_reason || '') : null);
}

async function one(id, current) {
  show(el('h1', {}, 'Bulk operation'), el('p', { class: 'muted' }, 'Loading…'));
  const path = '/api/v1/commands/bulk/' + encodeURIComponent(id);
  let b = await api(path);
  const box = el('div', { id: 'bulk-box' });
  const msg = el('p', { id: 'bulk-msg', role: 'status' });
  const actions = el('p', { class: 'actions', id: 'bulk-actions' });
  const fields = el('div', {});
  let drawn = '';
  const draw = () => {
    box.replaceChildren(progressView(b));
    fields.replaceChildren(details(b));
    if (drawn === b.state) return; // keeps the button (and its focus) while it runs
    drawn = b.state;
    actions.replaceChildren();
    if (b.state === 'running' && can(b.type)) {
      actions.append(el('button', { type: 'button', id: 'bulk-cancel', class: 'danger', onclick: cancel }, 'Cancel this bulk…'));
    } else if (b.state === 'running') {
      actions.append(el('span', { class: 'muted', id: 'bulk-no-cancel' }, 'Only a role that may order a ' + b.type + ' can cancel this bulk.'));
    }
  };
  async function cancel() {
    const ok = await confirmPlain('Cancel bulk ' + b.type + '?',
      ['The bulk stops before its next batch: devices it has not reached get no ' + b.type + '.',
        'The ' + b.queued + '+ commands it already queued stay queued; cancel those one by one in the command queue if needed.'],
      'Cancel bulk');
    if (!ok) return;
    try {
      b = await api(path + '/cancel', { method: 'POST' });
      msg.className = '';
      msg.textContent = 'Bulk canceled.';
    } catch (err) {
      msg.className = 'error';
      msg.textContent = err.message;
      b = await api(path);
    }
    if (current()) draw();
  }
  if (!current()) return;
  draw();
  show(el('h1', {}, 'Bulk ', b.type), el('p', {}, el('a', { href: '#/bulk' }, 'All bulk operations')),
    box, actions, msg, fields);
  // Follows it while it runs and this screen is the one shown (bounded: an hour).
  for (let i = 0; (b.state === 'running' || b.state === 'awaiting') && i < 7200; i++) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    if (!current()) return;
    let next;
    try {
      next = await api(path);
    } catch (err) {
      if (err.status === 401 || err.status === 404) throw err; // signed out, or gone
      msg.className = 'error';
      msg.textContent = 'Could not read the progress (' + err.message + '); trying again.';
      continue;
    }
    if (!current()) return;
    if (msg.className === 'error' && msg.textContent.startsWith('Could not read')) msg.textContent = '';
    b = next;
    draw();
  }
}

async function list(params, current) {
  const q = new URLSearchParams();
  if (STATES.includes(params.get('state'))) q.set('state', params.get('state'));
  q.set('limit', '50');
  if (params.get('cursor')) q.set('cursor', params.get('cursor'));
  show(el('h1', {}, 'Bulk operations'), el('p', { class: 'muted' }, 'Loading…'));
  const page = await api('/api/v1/commands/bulk?' + q);
  const s = el('select', { id: 'f-state', name: 'state' }, el('option', { value: '' }, 'any'),
    STATES.map((v) => el('option', { value: v }, v)));
  s.value = q.get('state') || '';
  const form = el('form', { id: 'bulk-filter', class: 'filters' },
    el('label', { class: 'filter', for: 'f-state' }, 'State', s),
    el('span', { class: 'filter-actions' }, el('button', { type: 'submit' }, 'Filter'),
      el('a', { href: '#/bulk' }, 'Clear')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    location.hash = '#/bulk' + (s.value ? '?state=' + encodeURIComponent(s.value) : '');
  });
  const rows = page.items.map((b) => el('tr', { 'data-id': b.id, 'data-state': b.state },
    el('td', { title: time(b.created_at) }, age(b.created_at)),
    el('td', {}, el('a', { href: '#/bulk/' + encodeURIComponent(b.id) }, b.type)),
    el('td', {}, stateCell(b)),
    el('td', { class: 'num' }, done(b) + ' of ' + b.expected_count),
    el('td', { class: 'num' }, String(b.queued)),
    el('td', { class: 'reason' }, b.reason),
    el('td', { class: 'mono' }, b.requested_by)));
  const t = table('bulks', ['Started', 'Type', 'State', 'Done', 'Queued', 'Reason', 'By'], rows, 'No bulk operations.');
  t.dataset.hash = location.hash; // which URL this table shows (tests wait for it)
  const pager = el('div', { class: 'pager' });
  if (params.get('cursor')) pager.append(el('button', { class: 'plain', type: 'button', id: 'prev', onclick: () => history.back() }, 'Previous'));
  if (page.next_cursor) {
    const p = new URLSearchParams(params);
    p.set('cursor', page.next_cursor);
    pager.append(el('a', { href: '#/bulk?' + p, id: 'next' }, 'Next page'));
  }
  if (!current()) return;
  show(el('h1', {}, 'Bulk operations'),
    el('p', { class: 'muted' }, 'Commands sent to every device a filter matched, from the device list (“Select all N matching”).'),
    form, t, pager);
}

export async function render(params, match, current) {
  if (match[1]) return one(decodeURIComponent(match[1]), current);
  return list(params, current);
}

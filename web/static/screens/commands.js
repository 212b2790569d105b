// The command queue across all devices (or one, with ?device=ID): newest first, filtered by
// status and type, cursor paging in the URL; a queued command can be canceled (the API
// refuses once a device has it). Data: GET /api/v1/commands.
import { el, show, api, age, time, table, can } from '../lib.js';

const STATUSES = ['queued', 'delivered', 'acknowledged', 'completed', 'failed', 'canceled', 'expired'];
const TYPES = ['lock', 'unlock', 'refresh', 'wipe', 'retire', 'rekey', 'policy'];
// What the last action did, shown once by the render that follows it.
let flash = '';

function select(id, label, values, value) {
  const s = el('select', { id, name: id }, el('option', { value: '' }, 'any'),
    values.map((v) => el('option', { value: v }, v)));
  s.value = value || '';
  return el('label', { class: 'filter', for: id }, label, s);
}

function statusCell(c) {
  const cls = c.status === 'completed' ? (c.verified ? 'ok' : '') : c.status === 'failed' || c.status === 'expired' ? 'bad' : '';
  return el('td', { class: 'status ' + cls }, c.status, c.status === 'completed' && c.verified ? ' ✓' : '');
}

export async function render(params, match, current) {
  const q = new URLSearchParams();
  for (const k of ['status', 'type']) if (params.get(k)) q.set(k, params.get(k));
  if (params.get('device')) q.set('device_id', params.get('device'));
  q.set('limit', /^[1-9][0-9]{0,2}$/.test(params.get('limit') || '') ? params.get('limit') : '50');
  if (params.get('cursor')) q.set('cursor', params.get('cursor'));
  show(el('h1', {}, 'Commands'), el('p', { class: 'muted' }, 'Loading…'));
  const page = await api('/api/v1/commands?' + q);
  const msg = el('p', { id: 'cmd-msg', role: 'status' }, flash);
  flash = '';
  const form = el('form', { id: 'cmd-filter', class: 'filters' },
    select('f-status', 'Status', STATUSES, params.get('status')),
    select('f-type', 'Type', TYPES, params.get('type')),
    el('span', { class: 'filter-actions' }, el('button', { type: 'submit' }, 'Filter'),
      el('a', { href: '#/commands' }, 'Clear')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    if (form.querySelector('#f-status').value) p.set('status', form.querySelector('#f-status').value);
    if (form.querySelector('#f-type').value) p.set('type', form.querySelector('#f-type').value);
    if (params.get('device')) p.set('device', params.get('device'));
    location.hash = '#/commands' + (p.toString() ? '?' + p : '');
  });
  const cancel = async (c, btn) => {
    btn.disabled = true;
    try {
      await api('/api/v1/commands/' + encodeURIComponent(c.id) + '/cancel', { method: 'POST' });
      if (!current()) return;
      flash = 'Canceled ' + c.type + ' ' + c.id + '.';
      await render(params, match, current);
    } catch (err) {
      btn.disabled = false;
      msg.className = 'error';
      msg.textContent = err.message;
    }
  };
  const rows = page.items.map((c) => {
    const actions = el('td', {});
    if (c.status === 'queued' && can(c.type)) {
      const b = el('button', { type: 'button', class: 'plain small cancel', 'aria-label': 'Cancel ' + c.type + ' ' + c.id }, 'Cancel');
      b.addEventListener('click', () => cancel(c, b));
      actions.append(b);
    }
    if (c.receipt) actions.append(el('a', { href: '#/commands/' + encodeURIComponent(c.id) + '/receipt' }, 'Receipt'));
    return el('tr', { 'data-id': c.id, 'data-device': c.device_id },
      el('td', { title: time(c.created_at) }, age(c.created_at)),
      el('td', {}, c.type),
      statusCell(c),
      el('td', { class: 'mono' }, el('a', { href: '#/devices/' + encodeURIComponent(c.device_id) }, c.device_id)),
      el('td', { class: 'reason' }, c.reason || c.result_detail || ''),
      el('td', { class: 'mono' }, c.created_by),
      actions);
  });
  const pager = el('div', { class: 'pager' });
  if (params.get('cursor')) pager.append(el('button', { class: 'plain', type: 'button', id: 'prev', onclick: () => history.back() }, 'Previous'));
  if (page.next_cursor) {
    const p = new URLSearchParams(params);
    p.set('cursor', page.next_cursor);
    pager.append(el('a', { href: '#/commands?' + p, id: 'next' }, 'Next page'));
  }
  const title = params.get('device')
    ? [el('h1', {}, 'Commands of ', el('span', { class: 'mono' }, params.get('device'))),
      el('p', {}, el('a', { href: '#/devices/' + encodeURIComponent(params.get('device')) }, 'Back to the device'), ' · ',
        el('a', { href: '#/commands' }, 'All devices'))]
    : [el('h1', {}, 'Commands'),
      el('p', { class: 'muted' }, 'Commands sent to every device of a filter: ', el('a', { href: '#/bulk', id: 'to-bulk' }, 'Bulk operations'), '.')];
  if (!current()) return;
  const t = table('commands', ['Created', 'Type', 'Status', 'Device', 'Reason or result', 'By', ''], rows, 'No commands match.');
  t.dataset.hash = location.hash; // which URL this table shows (tests wait for it)
  show(...title, form, msg, t, pager);
}

// The device list: one search box (owner, device id, model, hypervisor key fingerprint),
// filters, a sort and cursor paging, all kept in the URL so reload and back work; rows can be
// selected for a bulk command, confirmed by typing the count (POST /api/v1/commands/bulk).
// When the filter matches more than the page, "Select all N matching" sends the filter itself
// with the confirmed count instead of ids; the server queues those in the background and the
// console goes to that bulk's screen (#/bulk/{id}, screens/bulk.js), which follows and can cancel it.
import { el, show, api, age, time, compliance, table, can, confirmTyped } from '../lib.js';

const REASONS = [
  ['policy_not_applied', 'Policy not applied'],
  ['offline', 'Offline longer than the policy allows'],
  ['agent_too_old', 'Agent too old'],
  ['attestation_mismatch', 'Attestation mismatch'],
  ['attestation_stale', 'No recent attestation'],
  ['state_differs', 'Corporate state differs from desired'],
  ['wiped', 'Corporate half wiped'],
  ['no_policy', 'No policy'],
  ['retired', 'Retired'],
  ['superseded', 'Superseded by a newer enrollment'],
];
const SORTS = [
  ['last_checkin:desc', 'Last check-in, newest first'],
  ['last_checkin:asc', 'Last check-in, oldest first'],
  ['owner:asc', 'Owner, A to Z'],
  ['owner:desc', 'Owner, Z to A'],
  ['enrolled:desc', 'Enrolled, newest first'],
  ['enrolled:asc', 'Enrolled, oldest first'],
];
// The URL parameters that are passed to the API as they are.
const KEYS = ['q', 'status', 'compliant', 'reason', 'desired', 'reported', 'policy', 'label', 'group', 'not_seen_days', 'sort', 'order'];
const BULK = [['lock', 'Lock'], ['unlock', 'Unlock'], ['refresh', 'Refresh'], ['wipe', 'Wipe'], ['retire', 'Retire']];
const BULK_EFFECT = {
  lock: 'Each device locks its corporate half until it is unlocked.',
  unlock: 'Each device unlocks its corporate half.',
  refresh: 'Each device checks in and reports its state again.',
  wipe: 'Each device erases its corporate half for good; personal data is not touched.',
  retire: 'Each device erases its corporate half and leaves management.',
};

/* The page size a URL asks for (1-999, as the API takes), else 50. */
function pageLimit(asked) {
  return /^[1-9][0-9]{0,2}$/.test(asked || '') ? asked : '50';
}

/* 50, 100 and 200, plus the URL's own size when it is another, so the select shows the truth. */
function limitOptions(asked) {
  const sizes = ['50', '100', '200'];
  const own = pageLimit(asked);
  if (!sizes.includes(own)) sizes.push(own);
  return sizes.sort((a, b) => a - b).map((n) => [n, n]);
}

function select(id, label, options, value) {
  const s = el('select', { id, name: id },
    options.map(([v, text]) => el('option', { value: v }, text)));
  s.value = value;
  return el('label', { class: 'filter', for: id }, label, s);
}

function filters(params, policies, groups) {
  const q = el('input', {
    type: 'search', id: 'owner', name: 'q', autocomplete: 'off',
    placeholder: 'owner, device id, model or key fingerprint',
  });
  q.value = params.get('q') || params.get('owner') || '';
  let comp = '';
  if (params.get('reason')) comp = 'reason:' + params.get('reason');
  else if (params.get('compliant') === 'true') comp = 'yes';
  else if (params.get('compliant') === 'false') comp = 'no';
  const sortValue = params.get('sort')
    ? params.get('sort') + ':' + (params.get('order') || (params.get('sort') === 'owner' ? 'asc' : 'desc'))
    : 'last_checkin:desc';
  const states = [['', 'any'], ['active', 'active'], ['locked', 'locked'], ['wiped', 'wiped']];
  const form = el('form', { id: 'search', class: 'filters', role: 'search' },
    el('label', { class: 'filter wide', for: 'owner' }, 'Search', q),
    select('f-status', 'Status', [['', 'any'], ['active', 'active'], ['retired', 'retired']], params.get('status') || ''),
    select('f-compliance', 'Compliance', [['', 'any'], ['yes', 'compliant'], ['no', 'not compliant'],
      ...REASONS.map(([c, t]) => ['reason:' + c, t])], comp),
    select('f-desired', 'Desired state', states, params.get('desired') || ''),
    select('f-reported', 'Reported state', states, params.get('reported') || ''),
    select('f-policy', 'Policy', [['', 'any'], ...policies.map((p) => [p.name, p.name + (p.default ? ' (default)' : '')])],
      params.get('policy') || ''),
    el('label', { class: 'filter', for: 'f-label' }, 'Label',
      el('input', { type: 'text', id: 'f-label', name: 'label', autocomplete: 'off', placeholder: 'dept=sales AND NOT lost',
        value: params.get('label') || '' })),
    select('f-group', 'Group', [['', 'any'], ...groups.map((g) => [g.name, g.name])], params.get('group') || ''),
    select('f-seen', 'Last seen', [['', 'any time'], ['1', 'not for 1 day'], ['7', 'not for 7 days'],
      ['30', 'not for 30 days'], ['90', 'not for 90 days']], params.get('not_seen_days') || ''),
    select('f-sort', 'Sort', SORTS, sortValue),
    select('f-limit', 'Per page', limitOptions(params.get('limit')), pageLimit(params.get('limit'))),
    el('span', { class: 'filter-actions' },
      el('button', { type: 'submit' }, 'Search'),
      el('a', { href: '#/devices', id: 'clear' }, 'Clear')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    const v = (id) => form.querySelector('#' + id).value;
    if (q.value.trim()) p.set('q', q.value.trim());
    if (v('f-status')) p.set('status', v('f-status'));
    const c = v('f-compliance');
    if (c === 'yes') p.set('compliant', 'true');
    else if (c === 'no') p.set('compliant', 'false');
    else if (c.startsWith('reason:')) p.set('reason', c.slice(7));
    if (v('f-desired')) p.set('desired', v('f-desired'));
    if (v('f-reported')) p.set('reported', v('f-reported'));
    if (v('f-policy')) p.set('policy', v('f-policy'));
    if (v('f-label').trim()) p.set('label', v('f-label').trim());
    if (v('f-group')) p.set('group', v('f-group'));
    if (v('f-seen')) p.set('not_seen_days', v('f-seen'));
    const [sort, order] = v('f-sort').split(':');
    if (sort !== 'last_checkin' || order !== 'desc') {
      p.set('sort', sort);
      p.set('order', order);
    }
    if (v('f-limit') !== '50') p.set('limit', v('f-limit'));
    location.hash = '#/devices' + (p.toString() ? '?' + p : '');
  });
  return form;
}

function reasonsText(c) {
  if (!c || c.compliant || !c.reasons || !c.reasons.length) return '';
  return c.reasons.join('; ');
}

function row(d, selected, onToggle, pickable) {
  const box = el('input', { type: 'checkbox', class: 'pick', 'aria-label': 'Select ' + d.id, value: d.id });
  box.checked = selected.has(d.id);
  box.addEventListener('change', () => onToggle(d.id, box.checked));
  const cs = d.corporate_state || {};
  const policy = d.policy || {};
  return el('tr', { 'data-id': d.id },
    pickable ? el('td', { class: 'pick' }, box) : null,
    el('td', { class: 'mono' }, el('a', { href: '#/devices/' + encodeURIComponent(d.id) }, d.id)),
    el('td', { class: 'owner' }, d.owner),
    el('td', {}, d.model),
    el('td', {}, d.status),
    el('td', { class: 'state' }, cs.desired === cs.reported ? cs.reported || '' : cs.reported + ', ' + cs.desired + ' pending'),
    el('td', { class: 'compliance', title: reasonsText(d.compliance) || null }, compliance(d.compliance),
      reasonsText(d.compliance) ? el('div', { class: 'muted small' }, reasonsText(d.compliance)) : null),
    el('td', {}, policy.effective || el('span', { class: 'muted' }, 'none')),
    el('td', { title: time(d.last_checkin_at) }, d.last_checkin_at ? age(d.last_checkin_at) : 'never'));
}

function bulkResults(type, res) {
  // The two-person rule held it: nothing was sent; say where the request waits.
  if (res.status === 'pending_approval')
    return el('section', { id: 'bulk-results', class: 'card wide', 'aria-live': 'polite' },
      el('h2', {}, 'Bulk ' + type + ' of ' + res.approval.device_count + ' devices: waiting for approval by a second admin'),
      el('p', {}, 'Nothing was sent yet. ', el('a', { id: 'bulk-approval', href: '#/approvals/' + encodeURIComponent(res.approval_id) }, 'Open the request')));
  const words = { queued: 'queued', already_pending: 'already pending', refused: 'refused' };
  return el('section', { id: 'bulk-results', class: 'card wide', 'aria-live': 'polite' },
    el('h2', {}, 'Bulk ' + type + ': ',
      res.queued + ' queued, ' + res.already_pending + ' already pending, ' + res.refused + ' refused'),
    el('details', { open: res.refused > 0 || res.results.length <= 10 },
      el('summary', {}, 'Result for each device'),
      table('bulk-table', ['Device', 'Result', 'Command or reason'],
      res.results.map((r) => el('tr', { 'data-id': r.device_id, 'data-outcome': r.outcome },
        el('td', { class: 'mono' }, el('a', { href: '#/devices/' + encodeURIComponent(r.device_id) }, r.device_id)),
        el('td', { class: r.outcome === 'refused' ? 'bad' : r.outcome === 'queued' ? 'ok' : '' }, words[r.outcome] || r.outcome),
        el('td', { class: 'mono' }, r.command_id || r.detail || ''))),
      'Nothing was sent.')));
}

// The results of the last bulk command, shown above the list it refreshed.
let lastBulk = null;

async function runBulk(type, label, ids, rerender) {
  const n = ids.length;
  const noun = n === 1 ? 'device' : 'devices';
  const ok = await confirmTyped({
    title: label + ' ' + n + ' ' + noun,
    lines: [BULK_EFFECT[type], 'Devices that already have a pending ' + type + ' get no second one.'],
    expect: String(n),
    action: label + ' ' + n + ' ' + noun,
  });
  if (!ok) return;
  const res = await api('/api/v1/commands/bulk', { method: 'POST', body: { type, device_ids: ids, reason: 'console bulk ' + type + ' of ' + n + ' ' + noun } });
  lastBulk = bulkResults(type, res);
  await rerender();
}

// The list's filters as the bulk's filter object (the sort and paging are no filters).
function bulkFilter(api_q) {
  const f = {};
  for (const [k, v] of api_q) if (!['sort', 'order', 'limit', 'cursor'].includes(k)) f[k] = v;
  return f;
}

async function runBulkFilter(type, label, filter, n) {
  const ok = await confirmTyped({
    title: label + ' ' + n + ' matching devices',
    lines: [BULK_EFFECT[type], 'Every device the current filter matches, on every page, not only those shown.',
      'Devices that already have a pending ' + type + ' get no second one.'],
    expect: String(n),
    action: label + ' ' + n + ' devices',
  });
  if (!ok) return;
  const b = await api('/api/v1/commands/bulk', {
    method: 'POST', body: { type, filter, expected_count: n, reason: 'console bulk ' + type + ' of ' + n + ' matching devices' },
  });
  // The bulk runs in the background; its own screen follows it (and survives a reload). Held
  // by the two-person rule, it runs once approved: its request's screen says so.
  location.hash = b.status === 'pending_approval'
    ? '#/approvals/' + encodeURIComponent(b.approval_id)
    : '#/bulk/' + encodeURIComponent(b.id);
}

export async function render(params, match, current) {
  const api_q = new URLSearchParams();
  for (const k of KEYS) if (params.get(k)) api_q.set(k, params.get(k));
  // The old exact-owner link (#/devices?owner=...) becomes a search.
  if (!params.get('q') && params.get('owner')) api_q.set('q', params.get('owner'));
  const limit = pageLimit(params.get('limit'));
  api_q.set('limit', limit);
  if (params.get('cursor')) api_q.set('cursor', params.get('cursor'));
  show(el('h1', {}, 'Devices'), el('p', { class: 'muted' }, 'Loading…'));
  const [page, pols, groups] = await Promise.all([
    api('/api/v1/devices?' + api_q),
    api('/api/v1/policies').catch(() => ({ items: [] })),
    api('/api/v1/groups').catch(() => ({ items: [] })),
  ]);
  const selected = new Set();
  let matching = 0; // > 0: every device the filter matches is selected (this many)
  const count = el('span', { id: 'selected-count' }, 'None selected');
  const start = (t, label) => (matching
    ? runBulkFilter(t, label, bulkFilter(api_q), matching)
    : runBulk(t, label, [...selected], () => render(params, match, current)));
  const buttons = BULK.filter(([t]) => can(t)).map(([t, label]) => el('button', {
    type: 'button', id: 'bulk-' + t, class: t === 'wipe' || t === 'retire' ? 'danger' : 'plain', disabled: true,
    onclick: () => start(t, label).catch((err) => {
      results.replaceChildren(el('p', { class: 'error', role: 'alert' }, err.message));
    }),
  }, label + '…'));
  const results = el('div', { id: 'bulk-out' }, lastBulk);
  lastBulk = null;
  const all = el('input', { type: 'checkbox', id: 'select-all', 'aria-label': 'Select all devices on this page' });
  // Offered once the whole page is selected and the filter matches more than the page.
  const more = el('span', { id: 'select-more' });
  const offerMatching = async () => {
    more.replaceChildren();
    if (!page.next_cursor || selected.size !== page.items.length || matching) return;
    const c = await api('/api/v1/devices/count?' + new URLSearchParams(bulkFilter(api_q)));
    if (selected.size !== page.items.length || matching) return;
    more.replaceChildren(el('button', {
      type: 'button', id: 'select-matching', class: 'plain',
      onclick: () => { matching = c.count; update(); },
    }, 'Select all ' + c.count + ' matching'));
  };
  const update = () => {
    if (matching && selected.size !== page.items.length) matching = 0;
    count.textContent = matching ? 'All ' + matching + ' matching selected'
      : selected.size ? selected.size + ' selected' : 'None selected';
    for (const b of buttons) b.disabled = selected.size === 0;
    all.checked = page.items.length > 0 && selected.size === page.items.length;
    if (matching) {
      more.replaceChildren(el('button', {
        type: 'button', id: 'select-page-only', class: 'plain',
        onclick: () => { matching = 0; update(); },
      }, 'Only this page'));
    } else {
      offerMatching().catch((err) => more.replaceChildren(el('span', { class: 'error' }, err.message)));
    }
  };
  const toggle = (id, on) => {
    if (on) selected.add(id);
    else selected.delete(id);
    update();
  };
  // Roles without any bulk action (auditors) get the list without check boxes.
  const pickable = buttons.length > 0;
  const rows = page.items.map((d) => row(d, selected, toggle, pickable));
  all.addEventListener('change', () => {
    const on = all.checked;
    for (const r of rows) {
      const box = r.querySelector('input.pick');
      box.checked = on;
      toggle(box.value, on);
    }
  });
  const t = table('devices', [...(pickable ? [''] : []), 'Device', 'Owner', 'Model', 'Status', 'Corporate state', 'Compliance', 'Policy', 'Last check-in'],
    rows, 'No devices match.');
  if (pickable) {
    t.querySelector('th').replaceChildren(all);
    t.querySelector('th').className = 'pick';
  }
  t.dataset.hash = location.hash; // which URL this table shows (tests wait for it)
  const pager = el('div', { class: 'pager' });
  if (params.get('cursor')) {
    pager.append(el('button', { class: 'plain', type: 'button', id: 'prev', onclick: () => history.back() }, 'Previous'));
    const first = new URLSearchParams(params);
    first.delete('cursor');
    pager.append(el('a', { href: '#/devices' + (first.toString() ? '?' + first : ''), id: 'first' }, 'First page'));
  }
  if (page.next_cursor) {
    const p = new URLSearchParams(params);
    p.set('cursor', page.next_cursor);
    pager.append(el('a', { href: '#/devices?' + p, id: 'next' }, 'Next page'));
  }
  const bar = el('div', { class: 'bulkbar', role: 'group', 'aria-label': 'Bulk actions' }, count, more, buttons);
  if (current && !current()) return;
  show(el('h1', {}, 'Devices'), filters(params, pols.items || [], groups.items || []), ...(pickable ? [bar] : []), results, t, pager);
  update();
}

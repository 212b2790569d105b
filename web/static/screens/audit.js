// The audit log (#/audit?actor=&action=&target=&since=&until=&cursor=): the chain's verification
// with its last signed checkpoint, filters that live in the URL (reload and back keep them),
// cursor paging, and an export of everything the filters match as JSON lines, fetched from the
// server in resumable pieces (GET /api/v1/audit/export, Cleave-Next-Cursor).
import { el, show, api, time, session, ApiError } from '../lib.js';

const FILTERS = ['actor', 'action', 'target', 'since', 'until'];
const ACTIONS = ['access.denied', 'admin.create', 'admin.disable', 'admin.login', 'admin.logout',
  'admin.logout_all', 'admin.setup', 'admin.totp_enroll', 'api.auth', 'command.ack', 'command.cancel',
  'command.create', 'command.expire', 'command.receipt', 'command.result', 'device.auth', 'device.delete',
  'device.enroll', 'device.receipt', 'device.supersede', 'enrollment_token.create', 'enrollment_token.revoke',
  'policy.assign', 'policy.default', 'policy.put', 'token.create', 'token.revoke'];
const EXPORT_PIECE = 2000;
const EXPORT_MAX_PIECES = 500;

// An RFC 3339 time as the value of a datetime-local input (local time, to the second).
function toLocalInput(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function filterQuery(params) {
  const q = new URLSearchParams();
  for (const k of FILTERS) if (params.get(k)) q.set(k, params.get(k));
  return q;
}

// What this verification read: the whole chain, or only what follows the anchor it kept.
function scope(v) {
  const full = v.full_verified_at ? ['; the whole chain was last read from entry 1 at ', el('span', { id: 'full-at' }, time(v.full_verified_at))] : '';
  if (v.mode === 'full') {
    return el('p', { class: 'muted', id: 'verify-scope' }, v.ok
      ? `Full verification: read all ${v.checked} entries from entry 1 in ${v.took_ms} ms.`
      : `Full verification: read from entry 1 until the break, ${v.checked} entries in ${v.took_ms} ms.`);
  }
  return el('p', { class: 'muted', id: 'verify-scope' },
    `Incremental verification: entries 1 to ${v.verified_from} were verified before; this read the ${v.checked} entries after them and the new checkpoints in ${v.took_ms} ms`, full,
    '. An entry below the verified part edited in place shows only in a full verification.');
}

function verification(v) {
  if (!v) return el('div', { id: 'verify', class: 'verify muted' }, 'Verification unavailable.');
  const ck = v.last_checkpoint;
  const checkpoint = ck
    ? el('p', {}, 'Last signed checkpoint: entry ', el('strong', { id: 'ckpt-seq' }, String(ck.seq)), ' at ', time(ck.at),
      ', head hash ', el('span', { class: 'mono', id: 'ckpt-hash' }, ck.head_hash || ''), '. ',
      el('span', { class: 'muted' }, `${v.checkpoints} checkpoints in the database, ${v.checkpoint_file_lines} in the checkpoint file; entries after ${ck.seq} are covered by the chain only.`))
    : el('p', { class: 'muted' }, 'No signed checkpoint yet: the entries are covered by the hash chain only.');
  const status = el('span', { class: 'muted', role: 'status', id: 'verify-full-status' });
  const again = el('button', { type: 'button', class: 'plain', id: 'verify-full' }, 'Verify the whole chain');
  again.addEventListener('click', async () => {
    again.disabled = true;
    status.textContent = ' Reading every entry from entry 1…';
    try {
      const box = document.getElementById('verify');
      box.replaceWith(verification(await api('/api/v1/audit/verify?full=1')));
    } catch (err) {
      again.disabled = false;
      status.textContent = ' ' + err.message;
    }
  });
  const tools = el('p', {}, again, status);
  if (v.ok) {
    return el('div', { id: 'verify', class: 'verify intact', 'data-ok': 'true', 'data-mode': v.mode },
      el('p', {}, el('strong', { class: 'ok' }, '✓ Chain intact'), ` — all ${v.entries} entries check out against their hashes and the signed checkpoints.`),
      scope(v), checkpoint, tools);
  }
  return el('div', { id: 'verify', class: 'verify broken', 'data-ok': 'false', 'data-mode': v.mode, role: 'alert' },
    el('p', {}, el('strong', { class: 'bad' }, '✗ Chain broken'),
      v.first_bad_seq ? [' at entry ', el('strong', { id: 'bad-seq' }, String(v.first_bad_seq))] : null, ': ',
      el('span', { id: 'verify-problem' }, v.problem || 'no detail')),
    scope(v), checkpoint, tools);
}

function filterForm(params) {
  const input = (name, label, attrs = {}) => {
    const i = el('input', { id: 'f-' + name, name, type: 'text', autocomplete: 'off', ...attrs });
    i.value = attrs.type === 'datetime-local' ? (params.get(name) ? toLocalInput(params.get(name)) : '') : params.get(name) || '';
    return el('div', { class: 'af-field' }, el('label', { for: 'f-' + name }, label), i);
  };
  const form = el('form', { id: 'audit-filter', class: 'audit-filter', role: 'search' },
    input('actor', 'Actor (account or token id)'),
    input('action', 'Action', { list: 'audit-actions' }),
    input('target', 'Target'),
    input('since', 'From (local time)', { type: 'datetime-local', step: '1' }),
    input('until', 'Until (local time, exclusive)', { type: 'datetime-local', step: '1' }),
    el('datalist', { id: 'audit-actions' }, ACTIONS.map((a) => el('option', { value: a }))),
    el('div', { class: 'af-buttons' },
      el('button', { type: 'submit' }, 'Filter'),
      el('a', { href: '#/audit', id: 'clear-filters' }, 'Clear')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const k of FILTERS) {
      const v = form.elements[k].value.trim();
      if (!v) continue;
      q.set(k, form.elements[k].type === 'datetime-local' ? new Date(v).toISOString() : v);
    }
    location.hash = '#/audit' + (q.toString() ? '?' + q : '');
  });
  return form;
}

// A cell whose value is also a link that filters by it.
function filterLink(params, key, value) {
  if (!value) return el('td', { class: 'muted' }, '—');
  const q = filterQuery(params);
  q.set(key, value);
  return el('td', { class: key === 'action' ? '' : 'mono' }, el('a', { href: '#/audit?' + q, title: 'Only ' + key + ' ' + value }, value));
}

// Fetches every piece of the export for the current filters and offers it as a download.
async function exportLines(params, status, button) {
  const base = filterQuery(params);
  base.set('limit', String(EXPORT_PIECE));
  const parts = [];
  let cursor = '', entries = 0;
  button.disabled = true;
  try {
    for (let i = 0; i < EXPORT_MAX_PIECES; i++) {
      const q = new URLSearchParams(base);
      if (cursor) q.set('cursor', cursor);
      const res = await api('/api/v1/audit/export?' + q, { raw: true, headers: { Accept: 'application/x-ndjson' } });
      const text = await res.text();
      parts.push(text);
      entries += text.split('\n').filter((l) => l).length;
      status.textContent = `Exporting… ${entries} entries`;
      cursor = res.headers.get('Cleave-Next-Cursor') || '';
      if (!cursor) break;
    }
    const blob = new Blob(parts, { type: 'application/x-ndjson' });
    const a = el('a', { href: URL.createObjectURL(blob), download: `cleave-audit-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-')}.jsonl`, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    status.textContent = `Exported ${entries} entries as JSON lines.`;
  } catch (err) {
    if (!(err instanceof ApiError) || err.status === 401) throw err;
    status.className = 'error';
    status.textContent = 'Export failed: ' + err.message;
  } finally {
    button.disabled = false;
  }
}

export async function render(params) {
  const role = session.me ? session.me.role : '';
  if (role !== 'admin' && role !== 'auditor') {
    show(el('h1', {}, 'Audit log'), el('p', { class: 'error', role: 'alert' }, 'The audit log is open to the admin and auditor roles only.'));
    return;
  }
  const cursor = params.get('cursor') || '';
  const limit = /^[1-9][0-9]{0,2}$/.test(params.get('limit') || '') ? params.get('limit') : '50';
  const q = filterQuery(params);
  q.set('limit', limit);
  if (cursor) q.set('cursor', cursor);
  const form = filterForm(params);
  show(el('h1', {}, 'Audit log'), el('p', { class: 'muted' }, 'Loading…'));
  let page, verify = null, problem = null;
  try {
    [page, verify] = await Promise.all([api('/api/v1/audit?' + q), api('/api/v1/audit/verify')]);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status === 401 || err.status >= 500) throw err;
    problem = err.message;
    page = { items: [], next_cursor: null };
  }
  const rows = page.items.map((e) => el('tr', { 'data-seq': String(e.seq) },
    el('td', {}, String(e.seq)),
    el('td', { title: e.at, class: 'when' }, time(e.at)),
    filterLink(params, 'actor', e.actor),
    filterLink(params, 'action', e.action),
    filterLink(params, 'target', e.target),
    el('td', { class: e.outcome === 'ok' ? '' : 'bad' }, e.outcome),
    el('td', { class: 'detail' }, e.detail)));
  const pager = el('div', { class: 'pager' });
  if (cursor) pager.append(el('button', { class: 'plain', type: 'button', onclick: () => history.back() }, 'Previous'));
  if (page.next_cursor) {
    const p = filterQuery(params);
    p.set('cursor', page.next_cursor);
    if (limit !== '50') p.set('limit', limit);
    pager.append(el('a', { href: '#/audit?' + p, id: 'next' }, 'Next page'));
  }
  const status = el('span', { id: 'export-status', class: 'muted', role: 'status' });
  const exp = el('button', { type: 'button', id: 'export', class: 'plain' }, 'Export as JSON lines');
  exp.addEventListener('click', () => exportLines(params, status, exp));
  const heads = ['Seq', 'Time', 'Actor', 'Action', 'Target', 'Outcome', 'Detail'];
  const error = problem ? [el('p', { class: 'error', role: 'alert', id: 'audit-error' }, problem)] : [];
  show(el('h1', {}, 'Audit log'),
    verification(verify),
    form,
    ...error,
    el('p', { class: 'export' }, exp, ' ', status),
    el('table', { id: 'audit', 'data-for': location.hash },
      el('thead', {}, el('tr', {}, heads.map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows.length ? rows
        : el('tr', {}, el('td', { colspan: String(heads.length), class: 'muted' }, 'No entries match.')))),
    pager);
}

// Policies: the list with how far each policy's current version has reached (#/policies), and
// one policy (#/policies/NAME): its limits in a form that only admins can submit, the default
// switch, and assignment to devices. The API validates; its message is shown beside the form,
// next to the field it names when it names one.
import { el, show, api, time, can, field, session, ApiError } from '../lib.js';

// Every field of the policy document (server/api/policy_json.c), in form order.
// [path, label, hint, kind]: kind 'int' (0 = never), 'opt' (empty = not set), 'text'.
const FIELDS = [
  ['offline.lock_after_hours', 'Lock after offline (hours)', '0: never', 'int'],
  ['offline.wipe_after_days', 'Wipe after offline (days)', '0: never; must come after the lock', 'int'],
  ['offline.lock_after_seconds', 'Lock after offline (seconds)', 'optional; replaces the hours when set', 'opt'],
  ['offline.wipe_after_seconds', 'Wipe after offline (seconds)', 'optional; replaces the days when set', 'opt'],
  ['max_failed_unlocks', 'Wipe after failed unlocks', '0: never', 'int'],
  ['encryption.key_rotation_days', 'Rotate the volume key (days)', '0: never', 'int'],
  ['min_agent_version', 'Minimum agent version', 'e.g. 1.2.0; empty: any', 'text'],
];
const DEFAULTS = { encryption: { cipher: 'aes-256-xts', key_rotation_days: 90 },
  offline: { lock_after_hours: 72, wipe_after_days: 0 }, max_failed_unlocks: 10, min_agent_version: '' };
const NAME_RE = /^[A-Za-z0-9._-]{1,63}$/;

const get = (obj, path) => path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
const inputId = (path) => 'pf-' + path.replace(/[._]/g, '-');

function never(v, unit) {
  return v ? v + ' ' + unit : 'never';
}

// "2 of 3 applied v4" with a bar, from the API's devices counts.
function reach(p) {
  const d = p.devices;
  if (!d) return el('span', { class: 'muted' }, 'unknown');
  const pct = d.assigned ? Math.round((100 * d.applied) / d.assigned) : 0;
  return el('span', { class: 'reach' },
    el('span', { class: 'reach-text' }, `${d.applied} of ${d.assigned} applied`),
    el('span', { class: 'reach-bar', role: 'img', 'aria-label': pct + '% applied' },
      el('span', { class: 'reach-fill' + (d.assigned && d.applied === d.assigned ? ' full' : ''), 'data-pct': String(pct) })));
}

// Widths go through the CSSOM, never a style attribute, so the strict CSP holds.
function sizeBars(root) {
  for (const f of root.querySelectorAll('.reach-fill')) f.style.width = f.dataset.pct + '%';
}

function limits(c) {
  const off = c.offline || {};
  const lock = off.lock_after_seconds ? off.lock_after_seconds + ' s' : never(off.lock_after_hours, 'h');
  const wipe = off.wipe_after_seconds ? off.wipe_after_seconds + ' s' : never(off.wipe_after_days, 'days');
  return [lock, wipe, never(c.max_failed_unlocks, ''), never((c.encryption || {}).key_rotation_days, 'days')];
}

async function renderList() {
  const page = await api('/api/v1/policies');
  const rows = page.items.map((p) => el('tr', { 'data-name': p.name },
    el('td', {}, el('a', { href: '#/policies/' + encodeURIComponent(p.name) }, p.name),
      p.default ? el('span', { class: 'badge' }, 'default') : null),
    el('td', {}, 'v' + p.version),
    limits(p.content).map((t) => el('td', {}, t.trim())),
    el('td', {}, reach(p)),
    el('td', {}, time(p.updated_at))));
  const parts = [el('h1', {}, 'Policies'),
    el('p', { class: 'muted' }, 'What each device\'s hypervisor enforces on its own: offline lock and wipe, failed unlocks, key rotation. "Applied" counts the devices following a policy whose agent reports its current version.')];
  if (can('policy')) parts.push(newForm());
  parts.push(table(rows));
  show(...parts);
  sizeBars(document.getElementById('main'));
}

function table(rows) {
  const heads = ['Policy', 'Version', 'Offline lock', 'Offline wipe', 'Failed unlocks', 'Key rotation', 'Devices', 'Updated'];
  return el('table', { id: 'policies' },
    el('thead', {}, el('tr', {}, heads.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows.length ? rows
      : el('tr', {}, el('td', { colspan: String(heads.length), class: 'muted' }, 'No policy yet. Devices get none until one exists.'))));
}

function newForm() {
  const name = el('input', { type: 'text', id: 'new-policy', name: 'name', required: true, pattern: '[A-Za-z0-9._\\-]{1,63}', 'aria-describedby': 'new-policy-hint' });
  const err = el('p', { id: 'new-policy-error', class: 'error', role: 'alert', hidden: true });
  const form = el('form', { class: 'inline', id: 'create-policy', novalidate: true },
    el('label', { for: 'new-policy' }, 'New policy'), name,
    el('button', { type: 'submit' }, 'Create…'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = name.value.trim();
    if (!NAME_RE.test(v)) {
      err.textContent = 'A policy name is 1-63 letters, digits, ".", "-" or "_".';
      err.hidden = false;
      return;
    }
    location.hash = '#/policies/' + encodeURIComponent(v) + '?new=1';
  });
  return el('div', {}, form, el('p', { id: 'new-policy-hint', class: 'muted hint' }, '1-63 letters, digits, ".", "-" or "_".'), err);
}

// The form's values as the policy document the API takes.
function formBody(form) {
  const body = { encryption: { cipher: 'aes-256-xts' }, offline: {} };
  for (const [path, , , kind] of FIELDS) {
    const raw = form.elements[inputId(path)].value.trim();
    if (kind === 'opt' && raw === '') continue;
    const v = kind === 'text' ? raw : raw === '' ? NaN : Number(raw);
    const [a, b] = path.split('.');
    if (b) body[a][b] = v;
    else body[a] = v;
  }
  return body;
}

// Shows the API's message beside the form, and beside the field it names.
function showError(form, box, message) {
  for (const i of form.querySelectorAll('[aria-invalid]')) i.removeAttribute('aria-invalid');
  for (const m of form.querySelectorAll('.field-error')) m.remove();
  box.hidden = !message;
  box.textContent = message || '';
  if (!message) return;
  const hit = FIELDS.map((f) => f[0]).filter((p) => message.includes(p) || message.includes(p.split('.').pop()))
    .sort((a, b) => b.length - a.length)[0] || (message.startsWith('offline:') ? 'offline.wipe_after_days' : null);
  const input = hit && form.elements[inputId(hit)];
  if (input) {
    input.setAttribute('aria-invalid', 'true');
    input.closest('.pf-row').append(el('span', { class: 'field-error' }, message));
    input.focus();
  }
}

function editor(name, content, isNew, readOnly) {
  const box = el('p', { id: 'policy-error', class: 'error', role: 'alert', hidden: true });
  const saved = el('p', { id: 'policy-saved', class: 'ok', role: 'status', hidden: true });
  const rows = FIELDS.map(([path, label, hint, kind]) => {
    const v = get(content, path);
    const input = el('input', {
      id: inputId(path), name: path, type: kind === 'text' ? 'text' : 'number',
      min: kind === 'text' ? null : '0', step: kind === 'text' ? null : '1', 'aria-describedby': inputId(path) + '-hint',
      disabled: readOnly,
    });
    input.value = v === undefined || v === null ? '' : String(v);
    return el('div', { class: 'pf-row' }, el('label', { for: inputId(path) }, label), input,
      el('span', { id: inputId(path) + '-hint', class: 'muted hint' }, hint));
  });
  const form = el('form', { id: 'policy-form', class: 'policy-form', novalidate: true },
    el('div', { class: 'pf-row' }, el('span', { class: 'pf-label' }, 'Volume cipher'), el('span', { class: 'mono' }, 'aes-256-xts')),
    rows, box, saved,
    readOnly ? el('p', { class: 'muted' }, 'Only admins change policies.')
      : el('p', { class: 'actions' }, el('button', { type: 'submit', id: 'policy-save' }, isNew ? 'Create policy' : 'Save a new version')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    saved.hidden = true;
    showError(form, box, '');
    try {
      const p = await api('/api/v1/policies/' + encodeURIComponent(name), { method: 'PUT', body: formBody(form) });
      if (isNew) {
        location.hash = '#/policies/' + encodeURIComponent(p.name);
        return;
      }
      await renderOne(name, null, 'Saved as version ' + p.version + '.');
    } catch (err) {
      if (!(err instanceof ApiError) || err.status === 401) throw err;
      showError(form, box, err.message);
    }
  });
  return form;
}

// Assigning: the default switch and per-device assignment.
function assignment(p) {
  const out = [el('h2', {}, 'Assignment')];
  const msg = el('p', { id: 'assign-msg', role: 'status', class: 'muted' });
  if (p.default) {
    out.push(el('p', {}, 'This is the default policy: every device without a policy of its own follows it.'));
  } else {
    out.push(el('p', {}, el('button', { type: 'button', class: 'plain', id: 'make-default', onclick: async () => {
      try {
        await api('/api/v1/default-policy', { method: 'PUT', body: { name: p.name } });
        await renderOne(p.name, null, 'Now the default policy.');
      } catch (err) {
        if (!(err instanceof ApiError) || err.status === 401) throw err;
        msg.className = 'error';
        msg.textContent = err.message;
      }
    } }, 'Make this the default policy')));
  }
  const dev = el('input', { type: 'text', id: 'assign-device', name: 'device', list: 'assign-devices', required: true, autocomplete: 'off' });
  const form = el('form', { class: 'inline', id: 'assign-form' },
    el('label', { for: 'assign-device' }, 'Device id'), dev,
    el('button', { type: 'submit' }, 'Assign to this device'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.className = 'muted';
    msg.textContent = '';
    const id = dev.value.trim();
    if (!id) return;
    try {
      await api('/api/v1/devices/' + encodeURIComponent(id) + '/policy', { method: 'PUT', body: { policy: p.name } });
      await renderOne(p.name, null, 'Assigned to ' + id + '; it applies the policy at its next check-in.');
    } catch (err) {
      if (!(err instanceof ApiError) || err.status === 401) throw err;
      msg.className = 'error';
      msg.textContent = err.message;
    }
  });
  out.push(form, el('datalist', { id: 'assign-devices' }), msg);
  return out;
}

// Offers the first page of active devices as suggestions (owner shown beside the id).
async function suggestDevices() {
  const list = document.getElementById('assign-devices');
  if (!list) return;
  try {
    const page = await api('/api/v1/devices?status=active&limit=200');
    list.replaceChildren(...page.items.map((d) => el('option', { value: d.id }, d.owner)));
  } catch (e) {
    // Only suggestions: typing an id still works.
  }
}

async function renderOne(name, params, notice) {
  const isNew = params && params.get('new') === '1';
  let p = null, others = 0;
  try {
    // A name about to be created is looked for in the list, not asked for and missed.
    if (isNew) {
      const all = (await api('/api/v1/policies')).items;
      p = all.find((x) => x.name === name) || null;
      others = all.length;
    } else {
      p = await api('/api/v1/policies/' + encodeURIComponent(name));
    }
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
  }
  const back = el('p', {}, el('a', { href: '#/policies' }, '← All policies'));
  if (!p && (!isNew || !can('policy'))) {
    show(back, el('h1', {}, 'Policy not found'), el('p', {}, 'No policy is named ', el('span', { class: 'mono' }, name), '.'));
    return;
  }
  if (!p) {
    show(back, el('h1', {}, 'New policy ', el('span', { class: 'mono' }, name)),
      el('p', { class: 'muted' }, others ? 'Defaults are filled in. A new policy applies to the devices you assign it to.'
        : 'Defaults are filled in. The first policy becomes the default: every device follows it.'),
      editor(name, DEFAULTS, true, false));
    return;
  }
  const parts = [back, el('h1', {}, 'Policy ', el('span', { class: 'mono', id: 'policy-name' }, p.name),
    p.default ? el('span', { class: 'badge' }, 'default') : null)];
  if (notice) parts.push(el('p', { class: 'ok', role: 'status', id: 'policy-notice' }, notice));
  parts.push(el('dl', { class: 'fields', id: 'policy-facts' },
    field('Version', 'v' + p.version),
    field('Updated', time(p.updated_at)),
    field('Devices', reach(p)),
    session.me && ['admin', 'auditor'].includes(session.me.role)
      ? field('History', el('a', { href: '#/audit?' + new URLSearchParams({ target: p.name }), id: 'policy-history' }, 'Its changes in the audit log'))
      : []));
  parts.push(el('h2', {}, can('policy') ? 'Limits' : 'Limits (read only)'), editor(p.name, p.content, false, !can('policy')));
  if (can('policy')) parts.push(...assignment(p));
  show(...parts);
  sizeBars(document.getElementById('main'));
  if (can('policy')) suggestDevices();
}

export async function render(params, match) {
  if (match && match[1]) return renderOne(decodeURIComponent(match[1]), params);
  return renderList();
}

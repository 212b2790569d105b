// Groups (issue 11 section 5): each a named label query (dept=sales AND NOT lost) whose members
// are the devices that match it now. The list shows each group's query, policy and member
// count, with a link that opens its members in the device list (#/devices?group=NAME, where
// the bulk actions apply to them); admins create a group with its query (a query the server
// cannot read comes back with the position of the mistake) and delete one, confirmed by its name.
import { el, show, api, table, can, confirmTyped, ApiError } from '../lib.js';

function row(g, rerender, say) {
  const del = can('labels') ? el('button', {
    type: 'button', class: 'plain small', 'aria-label': 'Delete group ' + g.name,
    onclick: async () => {
      const ok = await confirmTyped({
        title: 'Delete group ' + g.name,
        lines: ['The group goes; its devices and their labels stay as they are.'],
        expect: g.name,
        action: 'Delete group',
      });
      if (!ok) return;
      try {
        await api('/api/v1/groups/' + encodeURIComponent(g.name), { method: 'DELETE' });
        await rerender('Deleted group ' + g.name + '.');
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) throw err;
        say('error', err.message);
      }
    },
  }, 'Delete') : null;
  return el('tr', { 'data-name': g.name },
    el('td', {}, g.name),
    el('td', { class: 'mono' }, g.query),
    el('td', {}, g.description),
    el('td', {}, g.policy || el('span', { class: 'muted' }, 'none')),
    el('td', { class: 'num' }, g.member_count === null ? '?' : String(g.member_count)),
    el('td', {}, el('a', { href: '#/devices?' + new URLSearchParams({ group: g.name }), class: 'members' }, 'Open members'), ' ', del));
}

function createForm(rerender, say, policies) {
  const name = el('input', { type: 'text', id: 'group-name', maxlength: '63', required: true, autocomplete: 'off',
    pattern: '[A-Za-z0-9][A-Za-z0-9._\\-]*', placeholder: 'sales-phones' });
  const query = el('input', { type: 'text', id: 'group-query', maxlength: '1000', required: true, autocomplete: 'off',
    spellcheck: 'false', placeholder: 'dept=sales AND os=android' });
  const desc = el('input', { type: 'text', id: 'group-description', maxlength: '200', autocomplete: 'off' });
  const policy = el('select', { id: 'group-policy' }, el('option', { value: '' }, 'none'),
    policies.map((p) => el('option', { value: p.name }, p.name)));
  const form = el('form', { id: 'group-form', class: 'filters', 'aria-labelledby': 'group-form-title' },
    el('label', { class: 'filter', for: 'group-name' }, 'Name', name),
    el('label', { class: 'filter wide', for: 'group-query' }, 'Label query', query),
    el('label', { class: 'filter', for: 'group-description' }, 'Description', desc),
    el('label', { class: 'filter', for: 'group-policy' }, 'Policy for its devices', policy),
    el('span', { class: 'filter-actions' }, el('button', { type: 'submit', id: 'group-create' }, 'Create group')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const g = await api('/api/v1/groups', { method: 'POST',
        body: { name: name.value.trim(), query: query.value, description: desc.value, policy: policy.value || null } });
      await rerender('Created group ' + g.name + ' (' + g.member_count + ' devices).');
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) throw err;
      say('error', err.message);
      query.focus();
    }
  });
  return el('section', { class: 'card wide' },
    el('h2', { id: 'group-form-title' }, 'New group'),
    el('p', { class: 'muted small' },
      'A query names labels: key=value, key (has the label), key!=value, joined with AND, OR, NOT and ' +
      'parentheses; quote values with spaces or other signs: owner="J. Doe". A group\'s policy applies to ' +
      'its devices that have none assigned of their own (the first such group by priority wins).'),
    form);
}

export async function render(params, match, current) {
  const status = el('p', { id: 'group-status', role: 'status', class: 'muted' });
  const say = (cls, text) => {
    status.className = cls;
    status.textContent = text;
  };
  const rerender = async (msg) => {
    await render(params, match, current);
    if (msg) {
      const s = document.getElementById('group-status');
      s.className = 'ok';
      s.textContent = msg;
    }
  };
  const [page, pols] = await Promise.all([
    api('/api/v1/groups'),
    api('/api/v1/policies').catch(() => ({ items: [] })),
  ]);
  if (current && !current()) return;
  const t = table('groups', ['Name', 'Query', 'Description', 'Policy', 'Devices', ''],
    page.items.map((g) => row(g, rerender, say)), 'No groups yet.');
  show(el('h1', {}, 'Groups'),
    el('p', { class: 'muted' }, 'Devices belong to a group while their labels match its query.'),
    status, t, can('labels') ? createForm(rerender, say, pols.items || []) : null);
}

// The device list: owner search and cursor paging.
import { el, show, api, time, compliance, table } from '../lib.js';

export async function render(params) {
  const owner = params.get('owner') || '';
  const cursor = params.get('cursor') || '';
  const limit = /^[1-9][0-9]{0,2}$/.test(params.get('limit') || '') ? params.get('limit') : '50';
  const q = new URLSearchParams({ limit });
  if (owner) q.set('owner', owner);
  if (cursor) q.set('cursor', cursor);
  const search = el('input', { type: 'search', id: 'owner', name: 'owner', placeholder: 'owner email', 'aria-label': 'Search devices' });
  search.value = owner;
  const form = el('form', { class: 'inline', id: 'search', role: 'search' }, search,
    el('button', { type: 'submit' }, 'Search'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    if (search.value.trim()) p.set('owner', search.value.trim());
    location.hash = '#/devices' + (p.toString() ? '?' + p : '');
  });
  show(el('h1', {}, 'Devices'), form, el('p', { class: 'muted' }, 'Loading…'));
  const page = await api('/api/v1/devices?' + q);
  const rows = page.items.map((d) => el('tr', { 'data-id': d.id },
    el('td', { class: 'mono' }, el('a', { href: '#/devices/' + encodeURIComponent(d.id) }, d.id)),
    el('td', { class: 'owner' }, d.owner),
    el('td', {}, d.status),
    el('td', {}, d.corporate_state ? d.corporate_state.desired + ' / ' + d.corporate_state.reported : ''),
    el('td', {}, compliance(d.compliance)),
    el('td', {}, time(d.last_checkin_at))));
  const pager = el('div', { class: 'pager' });
  if (cursor) pager.append(el('button', { class: 'plain', type: 'button', onclick: () => history.back() }, 'Previous'));
  if (page.next_cursor) {
    const p = new URLSearchParams({ cursor: page.next_cursor });
    if (owner) p.set('owner', owner);
    if (limit !== '50') p.set('limit', limit);
    pager.append(el('a', { href: '#/devices?' + p, id: 'next' }, 'Next page'));
  }
  show(el('h1', {}, 'Devices'), form,
    table('devices', ['Device', 'Owner', 'Status', 'Corporate state (desired / reported)', 'Compliance', 'Last check-in'],
      rows, 'No devices.'),
    pager);
}

// Device detail: owner, inventory, compliance reasons, hypervisor key, commands.
import { el, show, api, time, field, compliance, table } from '../lib.js';

export async function render(params, m) {
  const id = decodeURIComponent(m[1]);
  show(el('h1', {}, 'Device'), el('p', { class: 'muted' }, 'Loading…'));
  const path = '/api/v1/devices/' + encodeURIComponent(id);
  const [d, cmds] = await Promise.all([api(path), api(path + '/commands?limit=50')]);
  const hv = d.hypervisor || {};
  const reasons = d.compliance && d.compliance.reasons ? d.compliance.reasons : [];
  const cmdRows = cmds.items.map((c) => el('tr', {},
    el('td', { class: 'mono' }, c.id), el('td', {}, c.type), el('td', {}, c.status),
    el('td', {}, c.reason), el('td', {}, time(c.created_at)), el('td', {}, time(c.completed_at, '—'))));
  show(
    el('p', {}, el('a', { href: '#/devices' }, '← All devices')),
    el('h1', {}, 'Device ', el('span', { class: 'mono' }, d.id)),
    el('dl', { class: 'fields', id: 'device' },
      field('Owner', el('span', { class: 'owner' }, d.owner)),
      field('Status', d.status),
      field('Model / OS', (d.model || '') + ' / ' + (d.os || '')),
      field('Agent version', d.agent_version),
      field('Enrolled', time(d.enrolled_at)),
      field('Last check-in', time(d.last_checkin_at)),
      field('Corporate state', d.corporate_state ? 'desired ' + d.corporate_state.desired +
        ', reported ' + d.corporate_state.reported : ''),
      field('Compliance', compliance(d.compliance)),
      field('Hypervisor key fingerprint', el('span', { class: 'mono' }, hv.key_fingerprint || '')),
      field('Attestation', hv.attestation || '')),
    el('h2', {}, 'Compliance reasons'),
    reasons.length ? el('ul', { id: 'reasons' }, reasons.map((r) => el('li', {}, r)))
      : el('p', { class: 'muted', id: 'reasons' }, 'None: the device is compliant.'),
    el('h2', {}, 'Commands'),
    table('commands', ['Command', 'Type', 'Status', 'Reason', 'Created', 'Completed'], cmdRows, 'No commands.'));
}

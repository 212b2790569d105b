// The compliance dashboard: how many devices are compliant, how many are not for each reason,
// and how many are in each corporate state (desired / reported); every count links to the
// device list with that filter. The counts come from GET /api/v1/devices/summary. It also
// shows where the hypervisor keys live (issue 13): hardware-attested in a TPM, or software.
import { el, show, api, time, table } from '../lib.js';

function link(query, n) {
  return el('a', { href: '#/devices?' + new URLSearchParams(query) }, String(n));
}

function tile(id, label, n, query, cls) {
  return el('a', { class: 'tile ' + (cls || ''), id, href: '#/devices' + (query ? '?' + new URLSearchParams(query) : '') },
    el('span', { class: 'tile-n' }, String(n)), el('span', { class: 'tile-label' }, label));
}

export async function render() {
  show(el('h1', {}, 'Compliance'), el('p', { class: 'muted' }, 'Loading…'));
  const s = await api('/api/v1/devices/summary');
  const reasons = s.reasons.filter((r) => r.count > 0).sort((a, b) => b.count - a.count);
  const quiet = s.reasons.filter((r) => r.count === 0);
  const reasonRows = reasons.map((r) => el('tr', { 'data-code': r.code },
    el('td', {}, r.text),
    el('td', { class: 'num' }, link({ reason: r.code }, r.count)),
    el('td', { class: 'bar-cell' }, el('span', {
      class: 'meter', role: 'img', 'aria-label': Math.round((100 * r.count) / Math.max(1, s.total)) + '%',
      'data-pct': String(Math.round((100 * r.count) / Math.max(1, s.total))),
    }))));
  const stateRows = s.corporate_states.map((c) => el('tr', { 'data-state': c.desired + '/' + c.reported },
    el('td', {}, c.desired),
    el('td', {}, c.reported),
    el('td', { class: c.desired === c.reported ? '' : 'bad' }, c.desired === c.reported ? 'in step' : 'waiting for the device'),
    el('td', { class: 'num' }, link({ desired: c.desired, reported: c.reported }, c.count))));
  const pct = (n) => String(Math.round((100 * n) / Math.max(1, s.total)));
  const k = s.hypervisor_keys;
  const keyRows = [
    ['tpm_endorsed', 'In a TPM, endorsement verified (hardware-attested)', k.tpm_endorsed],
    ['tpm_unendorsed', 'In a TPM, endorsement not verified', k.tpm_unendorsed],
    ['software', 'In software (file keystore)', k.software],
  ].filter(([code, , n]) => n > 0 || code !== 'tpm_unendorsed').map(([code, text, n]) => el('tr', { 'data-key': code },
    el('td', {}, text),
    el('td', { class: 'num' }, String(n)),
    el('td', { class: 'bar-cell' }, el('span', { class: 'meter', role: 'img', 'aria-label': pct(n) + '%', 'data-pct': pct(n) }))));
  const view = [
    el('h1', {}, 'Compliance'),
    el('div', { class: 'tiles' },
      tile('tile-total', 'devices', s.total, null),
      tile('tile-compliant', 'compliant', s.compliant, { compliant: 'true' }, 'ok'),
      tile('tile-not', 'not compliant', s.not_compliant, { compliant: 'false' }, s.not_compliant ? 'bad' : '')),
    el('h2', {}, 'Why devices are not compliant'),
    el('p', { class: 'muted' }, 'A device can have several reasons, so these counts can add up to more than the devices that are not compliant.'),
    table('dash-reasons', ['Reason', 'Devices', 'Share of all devices'], reasonRows, 'Every device is compliant.'),
    quiet.length ? el('p', { class: 'muted small', id: 'dash-quiet' }, 'No device has: ' + quiet.map((r) => r.text).join('; ') + '.') : null,
    el('h2', {}, 'Corporate state'),
    table('dash-states', ['Desired', 'Reported by the hypervisor', 'Meaning', 'Devices'], stateRows, 'No devices.'),
    el('h2', {}, 'Hypervisor keys'),
    el('p', { class: 'muted' }, 'A key in a TPM with a verified endorsement cannot be copied off the device: its attestations and receipts are signed inside that TPM.'),
    table('dash-keys', ['Where the key lives', 'Devices', 'Share of all devices'], keyRows, 'No devices.'),
    el('p', { class: 'muted small' }, 'Counted at ' + time(s.computed_at) + '.'),
  ];
  show(...view);
  // Bar widths are set through the CSSOM (allowed by the CSP), never as inline style text.
  for (const m of document.querySelectorAll('#dash-reasons .meter, #dash-keys .meter')) m.style.width = m.dataset.pct + '%';
}

// Receipt view: a command's receipt and ticket decoded field by field, the verification the
// server recorded and the checks it makes again now, the hypervisor key (PEM, fingerprint),
// downloads of the raw receipt, ticket and key, and the openssl commands an auditor runs on
// them (the same steps as README.md "For auditors" and schema/wire-formats.md §5).
import { el, show, api, time, field, table } from '../lib.js';

const yes = (v, good, bad) => el('span', { class: v ? 'ok' : 'bad' }, v ? good + ' ✓' : bad);

// [offset, size, name, value, note] rows for the receipt (wire-formats.md §4).
function receiptRows(r) {
  const hex = (n) => '0x' + Number(n).toString(16).padStart(3, '0');
  return [
    [0, 8, 'magic', r.magic],
    [8, 2, 'version', r.version],
    [10, 2, 'type', r.type + ' (' + r.type_name + ')'],
    [12, 4, 'result', r.result + (r.result === 0 ? ' (done)' : ' (hypercall error)')],
    [16, 32, 'hv_key', r.hv_key, r.hv_key_ok ? 'the device\'s registered key' : 'NOT the device\'s registered key'],
    [48, 32, 'device_id', r.device_id],
    [80, 32, 'command_id', r.command_id || '(empty: the hypervisor acted on its own)'],
    [112, 32, 'ticket_hash', r.ticket_hash, r.ticket_hash_ok ? 'SHA-256 of this command\'s ticket' : 'does NOT match this command\'s ticket'],
    [144, 8, 'ticket_counter', r.ticket_counter],
    [152, 8, 'seq', r.seq, 'this hypervisor\'s receipt number'],
    [160, 8, 'epoch_before', r.epoch_before],
    [168, 8, 'epoch_after', r.epoch_after],
    [176, 4, 'header_state', r.header_state + ' (' + r.header_state_name + ')'],
    [180, 4, 'checks_run', hex(r.checks_run), 'bits below'],
    [184, 4, 'checks_passed', hex(r.checks_passed), 'bits below'],
    [188, 4, 'reserved', '0'],
    [192, 8, 'started_ms', time(r.started_at, '0')],
    [200, 8, 'finished_ms', time(r.finished_at, '0')],
    [208, 32, 'prev_hash', r.prev_hash, 'SHA-256 of this hypervisor\'s previous receipt'],
    [240, 16, 'reserved', '0'],
    [256, 64, 'sig', r.signature, r.signature_ok ? 'Ed25519, verifies with the key below' : 'does NOT verify'],
  ];
}

function ticketRows(t) {
  return [
    [0, 8, 'magic', t.magic],
    [8, 2, 'version', t.version],
    [10, 2, 'type', t.type + ' (' + t.type_name + ')'],
    [12, 4, 'flags', '0'],
    [16, 32, 'device_id', t.device_id],
    [48, 32, 'command_id', t.command_id],
    [80, 32, 'hv_key', t.hv_key, 'the one hypervisor this ticket is for'],
    [112, 8, 'counter', t.counter],
    [120, 8, 'issued_at', time(t.issued_at)],
    [128, 8, 'expires_at', time(t.expires_at)],
    [136, 32, 'args', t.args.join(', ')],
    [168, 24, 'reserved', '0'],
    [192, 64, 'sig', t.signature, 'Ed25519 by the server\'s ticket key'],
  ];
}

function layout(id, rows) {
  return table(id, ['Bytes', 'Field', 'Value', ''], rows.map(([off, size, name, value, note]) =>
    el('tr', { 'data-field': name },
      el('td', { class: 'num' }, off + '–' + (off + size - 1)),
      el('td', { class: 'mono' }, name),
      el('td', { class: 'mono' }, String(value)),
      el('td', { class: 'muted' }, note || ''))), '');
}

function checks(r) {
  const rows = r.checks.map((c) => {
    const failed = c.run && !c.passed;
    const missing = c.required && !c.passed;
    return el('tr', { 'data-check': c.name },
      el('td', { class: 'mono' }, c.name),
      el('td', {}, c.required ? 'required' : 'optional'),
      el('td', {}, c.run ? 'ran' : 'not run'),
      el('td', {}, failed || missing ? el('span', { class: 'bad' }, c.run ? 'failed' : 'missing')
        : c.passed ? el('span', { class: 'ok' }, 'passed ✓') : el('span', { class: 'muted' }, '—')));
  });
  return table('checks', ['Check (wire-formats.md §4.2)', 'For this type', 'Ran', 'Result'], rows, '');
}

// The auditor's steps: [comment, command, what it must print]. Each line runs as shown in a
// folder holding the three downloads.
function steps(v) {
  const r = v.receipt;
  return [
    ['The signature: bytes 0..255 are signed, 256..319 are the signature.',
      'head -c 256 receipt.bin > body.bin; tail -c 64 receipt.bin > sig.bin\n' +
      'openssl pkeyutl -verify -pubin -inkey hv.pem -rawin -in body.bin -sigfile sig.bin',
      'Signature Verified Successfully'],
    ['The key inside the receipt (bytes 16..47) is the key in hv.pem: both lines print the same.',
      'od -An -tx1 -v -j16 -N32 receipt.bin | tr -d \' \\n\'; echo\n' +
      'openssl pkey -pubin -in hv.pem -outform DER | tail -c 32 | od -An -tx1 -v | tr -d \' \\n\'; echo',
      r.hv_key],
    ['The key\'s fingerprint, as this console and the device show it.',
      'echo "SHA256:$(openssl pkey -pubin -in hv.pem -outform DER | tail -c 32 | openssl dgst -sha256 -binary | base64 | tr -d =)"',
      v.hypervisor.key_fingerprint],
    ['It answers this command: bytes 112..143 are the SHA-256 of the ticket.',
      'od -An -tx1 -v -j112 -N32 receipt.bin | tr -d \' \\n\'; echo; sha256sum < ticket.bin',
      v.ticket.sha256],
    ['What was done: the result (0 = done), then the checks run and passed (bits above).',
      'od -An -td4 -j12 -N4 receipt.bin; od -An -tx4 -j180 -N8 receipt.bin',
      r.result + ' / ' + r.checks_run.toString(16).padStart(8, '0') + ' ' + r.checks_passed.toString(16).padStart(8, '0')],
  ];
}

function downloads(v) {
  const c = v.command;
  const base = '/api/v1/commands/' + encodeURIComponent(c.id);
  return el('ul', { id: 'downloads', class: 'downloads' },
    el('li', {}, el('a', { id: 'dl-receipt', href: base + '/receipt.bin', download: 'receipt.bin' }, 'receipt.bin'),
      el('span', { class: 'muted' }, ' 320 bytes, SHA-256 ' + v.receipt.sha256)),
    el('li', {}, el('a', { id: 'dl-ticket', href: base + '/ticket.bin', download: 'ticket.bin' }, 'ticket.bin'),
      el('span', { class: 'muted' }, ' 256 bytes, SHA-256 ' + v.ticket.sha256)),
    el('li', {}, el('a', { id: 'dl-key', download: 'hv.pem',
      href: '/api/v1/devices/' + encodeURIComponent(v.device.id) + '/hypervisor-key.pem' }, 'hv.pem'),
    el('span', { class: 'muted' }, ' the hypervisor\'s public key')));
}

export async function render(params, m, current) {
  const id = decodeURIComponent(m[1]);
  show(el('h1', {}, 'Receipt'), el('p', { class: 'muted' }, 'Loading…'));
  const v = await api('/api/v1/commands/' + encodeURIComponent(id) + '/receipt');
  if (!current()) return;
  const c = v.command;
  const r = v.receipt;
  const back = el('p', {}, el('a', { href: '#/devices/' + encodeURIComponent(v.device.id) }, '← Device'));
  const about = el('dl', { class: 'fields', id: 'receipt-about' },
    field('Command', [el('span', { class: 'mono' }, c.id), ' (' + c.type + ', ' + c.status + ')']),
    field('Device', el('span', { class: 'mono' }, v.device.id)),
    field('Owner', el('span', { class: 'owner' }, v.device.owner)),
    field('Requested', time(c.created_at) + ' by ' + c.created_by),
    field('Completed', time(c.completed_at, '—')));
  if (!r || r.decode_error) {
    show(back, el('h1', {}, 'Receipt for ', el('span', { class: 'mono' }, c.id)), about,
      el('p', { id: 'no-receipt', class: r ? 'error' : 'muted' },
        r ? 'The stored receipt cannot be decoded: ' + r.decode_error
          : 'No receipt yet: the hypervisor has not answered this command (status ' + c.status + ').'));
    return;
  }
  const verdict = el('div', { id: 'verification', class: 'badge ' + (c.verified ? 'phase-done' : 'phase-failed'),
    'data-verified': c.verified ? 'yes' : 'no' },
  el('p', {}, el('strong', {}, 'Server\'s verification when the receipt arrived: '),
    c.verified ? el('span', { class: 'ok' }, 'receipt verified ✓')
      : el('span', { class: 'bad' }, 'not verified: ' + (c.unverified_reason || 'no reason recorded'))),
  el('ul', { class: 'checked' },
    el('li', {}, yes(r.signature_ok, 'signature verifies with the device\'s registered hypervisor key', 'signature does NOT verify')),
    el('li', {}, yes(r.hv_key_ok, 'signed by the key the hypervisor attested at enrollment', 'signed by another key')),
    el('li', {}, yes(r.ticket_hash_ok, 'answers this command\'s ticket', 'does not answer this command\'s ticket'))),
  el('p', { class: 'muted' }, 'The second list is checked again now, each time this page is opened.'));
  const cmds = el('ol', { id: 'openssl', class: 'openssl' }, steps(v).map(([what, cmd, want]) =>
    el('li', {}, el('p', {}, what), el('pre', { class: 'cmd' }, cmd),
      el('p', { class: 'expect' }, 'Prints: ', el('span', { class: 'mono' }, String(want))))));
  show(back,
    el('h1', {}, 'Receipt for ', el('span', { class: 'mono' }, c.id)),
    verdict, about,
    el('h2', {}, 'Check it yourself with openssl'),
    el('p', {}, 'Download the three files into one folder, then run these commands there ' +
      '(OpenSSL 3.0 or later, coreutils). Nothing else is needed: not this server, not its word.'),
    downloads(v), cmds,
    el('h2', {}, 'Hypervisor key'),
    el('dl', { class: 'fields', id: 'hv-key' },
      field('Fingerprint', el('span', { class: 'mono', id: 'hv-fingerprint' }, v.hypervisor.key_fingerprint)),
      field('Raw (hex)', el('span', { class: 'mono' }, v.hypervisor.key_hex)),
      field('PEM', el('pre', { id: 'hv-pem' }, v.hypervisor.key_pem))),
    el('h2', {}, 'Receipt, 320 bytes (', el('span', { class: 'mono' }, 'CLVRCPT1'), ')'),
    layout('receipt-fields', receiptRows(r)),
    el('h2', {}, 'Checks'), checks(r),
    el('h2', {}, 'Ticket it answers, 256 bytes (', el('span', { class: 'mono' }, 'CLVTICK1'), ')'),
    v.ticket ? layout('ticket-fields', ticketRows(v.ticket)) : el('p', { class: 'error' }, 'The ticket cannot be decoded.'));
}

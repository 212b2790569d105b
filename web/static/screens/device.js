// Device detail: who and what the device is, its policy and compliance, the corporate half's
// state as one badge (requested → delivered → done, with the receipt's verification), the
// actions the signed-in role may take, and the command timeline, newest first. While a command
// is open the screen reloads its data every few seconds (bounded) and stops when left; the parts
// are rebuilt in place and keyboard focus stays on the control that had it.
import { el, show, api, time, age, field, compliance, table, can, confirmTyped, who, ApiError } from '../lib.js';
import { LabelsPanel } from '../labels.js';

const STATE_TYPES = ['lock', 'unlock', 'wipe', 'retire']; // the commands that move the badge
const OPEN = ['queued', 'delivered', 'acknowledged'];
const POLL_MS = 3000;
const POLL_MAX = 200; // 10 minutes of polling after the last action or load
const SETTLE = 10; // rounds to wait for the proven state once no command is open
const PAGE = 200;
const PAGES_MAX = 5; // the timeline and badge look at the newest 1,000 commands at most

const isOpen = (c) => OPEN.includes(c.status);
const title = (s) => s.charAt(0).toUpperCase() + s.slice(1);

// The device and its commands, newest first (the queue across devices, filtered to this one),
// so the first page holds what the badge needs; older pages only lengthen the timeline.
async function load(id) {
  const d = await api('/api/v1/devices/' + encodeURIComponent(id));
  let cmds = [];
  let cursor = '';
  let pages = 0;
  for (; pages < PAGES_MAX; pages++) {
    const q = new URLSearchParams({ device_id: id, limit: String(PAGE) });
    if (cursor) q.set('cursor', cursor);
    const page = await api('/api/v1/commands?' + q);
    cmds = cmds.concat(page.items);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  // Requests of the two-person rule still waiting for a second admin (newest first).
  const waiting = await api('/api/v1/approvals?' + new URLSearchParams({ device_id: id, status: 'pending' }));
  return { d, cmds, truncated: Boolean(cursor), approvals: waiting.items };
}

// The badge's facts, from the desired and proven state and the newest lock/unlock/wipe/retire
// that still counts (as for the desired state, a canceled or expired one does not; a newer one
// of those is only mentioned): phase is none, requested, delivered, done or failed.
export function badgeOf(d, cmds) {
  const cs = d.corporate_state || {};
  const ours = cmds.filter((c) => STATE_TYPES.includes(c.type));
  const cmd = ours.find((c) => c.status !== 'canceled' && c.status !== 'expired');
  const dropped = ours[0] && ours[0] !== cmd ? ours[0] : null;
  const b = { cmd, dropped, desired: cs.desired || '?', reported: cs.reported || '?', phase: 'none' };
  if (!cmd) return b;
  if (cmd.status === 'queued') b.phase = 'requested';
  else if (cmd.status === 'delivered' || cmd.status === 'acknowledged') b.phase = 'delivered';
  else if (cmd.status === 'completed') b.phase = 'done';
  else b.phase = 'failed';
  return b;
}

function steps(b) {
  const c = b.cmd;
  const order = ['requested', 'delivered', 'done'];
  const reached = b.phase === 'failed' ? 2 : order.indexOf(b.phase);
  const when = [c.created_at, c.delivered_at || c.acknowledged_at, c.completed_at];
  return el('ol', { class: 'steps' }, order.map((s, i) => {
    const cls = i < reached ? 'step past' : i === reached ? 'step now' : 'step';
    const label = i === 2 && b.phase === 'failed' ? 'failed' : s;
    return el('li', { class: cls, 'aria-current': i === reached ? 'step' : null }, label,
      when[i] ? el('span', { class: 'when' }, ' ' + age(when[i])) : null);
  }));
}

// What the receipt proves, in words: verified ✓, or why not.
function proof(b) {
  const c = b.cmd;
  const link = (text, cls) => el('a', { class: 'proof ' + cls, id: 'badge-receipt',
    href: '#/commands/' + encodeURIComponent(c.id) + '/receipt' }, text);
  if (b.phase === 'done' && c.verified) return link('receipt verified ✓', 'ok');
  if (b.phase === 'done')
    return c.receipt ? link('receipt not verified: ' + (c.unverified_reason || 'no reason given'), 'bad')
      : el('span', { class: 'proof bad' }, 'not verified: ' + (c.unverified_reason || 'no receipt from the hypervisor'));
  if (b.phase === 'failed') return el('span', { class: 'proof bad' }, 'failed: ' + (c.result_detail || 'no detail'));
  if (b.phase === 'requested') return el('span', { class: 'proof muted' }, 'waiting for the device to check in');
  return el('span', { class: 'proof muted' }, 'the device has it; waiting for its receipt');
}

function badge(b) {
  const state = el('span', { class: 'state' }, 'Corporate half: ', el('strong', {}, b.reported),
    b.desired !== b.reported ? el('span', { class: 'muted' }, ' (wanted: ' + b.desired + ')') : null);
  const attrs = { id: 'corp-badge', class: 'badge phase-' + b.phase, 'data-phase': b.phase };
  const dropped = b.dropped ? el('p', { class: 'muted dropped' }, 'A later ' + b.dropped.type + ' was ' +
    b.dropped.status + ' ' + age(b.dropped.completed_at || b.dropped.expires_at) + '.') : null;
  if (!b.cmd) return el('div', attrs, state, el('p', { class: 'muted' }, 'No lock or wipe in effect.'), dropped);
  attrs['data-verified'] = b.phase === 'done' && b.cmd.verified ? 'yes' : 'no';
  if (b.phase === 'done' && !b.cmd.verified) attrs.class += ' unverified';
  return el('div', attrs, state,
    el('p', { class: 'order' }, el('strong', {}, title(b.cmd.type)), steps(b), proof(b)), dropped);
}

// Where the hypervisor's key lives, and whether a TPM's maker vouched for it at enrollment.
function identity(hv) {
  if (hv.identity === 'tpm' && hv.endorsement === 'verified') {
    return el('span', { id: 'identity', class: 'proof ok' },
      'key in a TPM, endorsement verified' + (hv.endorsement_ca ? ' (' + hv.endorsement_ca + ')' : ''));
  }
  if (hv.identity === 'tpm') {
    return el('span', { id: 'identity' }, 'key in a TPM, endorsement not verified');
  }
  return el('span', { id: 'identity' }, [
    'software key (file keystore)',
    el('span', { class: 'muted' }, ' not hardware-attested'),
  ]);
}

function fields(d) {
  const hv = d.hypervisor || {};
  const p = d.policy || {};
  const c = d.compliance || {};
  const reasons = c.reasons || [];
  const link = (id) => el('a', { class: 'mono', href: '#/devices/' + encodeURIComponent(id) }, id);
  const applied = p.applied
    ? p.applied + ' v' + p.applied_version
    : 'none yet';
  return el('dl', { class: 'fields', id: 'device' },
    field('Owner', el('span', { class: 'owner' }, d.owner)),
    field('Hypervisor key fingerprint', el('span', { class: 'mono', id: 'fingerprint' }, hv.key_fingerprint || '')),
    field('Status', d.status),
    field('Model / OS', (d.model || '?') + ' / ' + (d.os || '?')),
    field('Agent version', d.agent_version),
    field('Enrolled', time(d.enrolled_at)),
    field('Last check-in', [time(d.last_checkin_at), d.last_checkin_at ? el('span', { class: 'muted' }, ' (' + age(d.last_checkin_at) + ')') : null]),
    field('Policy', [p.effective ? p.effective + ' v' + p.effective_version : 'none',
      p.effective && !p.assigned ? el('span', { class: 'muted' }, ' (the default)') : null,
      el('br', {}), el('span', { id: 'policy-applied' }, 'applied on the device: ' + applied)]),
    field('Compliance', [compliance(c), reasons.length
      ? el('ul', { id: 'reasons' }, reasons.map((r) => el('li', {}, r))) : null]),
    field('Key epoch', [String(hv.key_epoch ?? '?'), hv.key_epoch_since ? el('span', { class: 'muted' }, ' since ' + time(hv.key_epoch_since)) : null]),
    field('Attestation', [hv.attestation || '', hv.attested_at ? el('span', { class: 'muted' }, ' ' + age(hv.attested_at)) : null]),
    field('Hypervisor identity', identity(hv)),
    d.superseded_by ? field('Superseded by', link(d.superseded_by)) : null,
    d.replaces ? field('Replaces', link(d.replaces)) : null);
}

// Which actions to offer: the role's, minus those the state makes pointless, and none of the
// lock/unlock/wipe/retire family while one of them is still open.
function offered(d, cmds, approvals) {
  if (d.status !== 'active') return [];
  const waiting = (t) => (approvals || []).some((a) => a.type === t);
  const desired = (d.corporate_state || {}).desired;
  const stateOpen = cmds.some((c) => STATE_TYPES.includes(c.type) && isOpen(c));
  const open = (t) => cmds.some((c) => c.type === t && isOpen(c));
  const want = [];
  if (!stateOpen && desired === 'active') want.push('lock');
  if (!stateOpen && desired === 'locked') want.push('unlock');
  if (!open('refresh')) want.push('refresh');
  if (desired !== 'wiped' && !open('rekey')) want.push('rekey');
  if (!stateOpen && desired !== 'wiped' && !waiting('wipe')) want.push('wipe');
  if (!stateOpen && !waiting('retire')) want.push('retire');
  return want.filter((a) => can(a));
}

// The open lock/unlock/wipe/retire with its age; while it is still queued (not yet sent to the
// device) whoever may order it may also cancel it.
function pendingNote(cmds, cancel) {
  const c = cmds.find((x) => STATE_TYPES.includes(x.type) && isOpen(x));
  if (!c) return null;
  return el('p', { id: 'pending', class: 'pending' }, title(c.type) + ' pending since ',
    el('time', { datetime: c.created_at, title: time(c.created_at) }, age(c.created_at)),
    ' (' + c.status + '). Another lock or wipe is offered once it has finished.',
    c.status === 'queued' && can(c.type)
      ? el('button', { type: 'button', id: 'cancel-pending', class: 'plain', onclick: () => cancel(c) },
        'Cancel this ' + c.type)
      : null);
}

// A wipe or retire held back by the two-person rule: nothing reaches the device until a second
// admin approves it (or an admin overrides), so the screen says so and offers no second one.
function approvalNote(approvals) {
  if (!approvals || !approvals.length) return null;
  return el('div', { id: 'approval-wait', class: 'approval-wait', role: 'status' },
    approvals.map((a) => el('p', { 'data-id': a.id },
      el('strong', {}, title(a.type)), ' requested by ', who(a.requested_by, a.requested_by_name), ' ',
      el('time', { datetime: a.created_at, title: time(a.created_at) }, age(a.created_at)),
      ': waiting for approval by a second admin (expires ' + time(a.expires_at) + '). ',
      el('a', { href: '#/approvals/' + encodeURIComponent(a.id) }, 'Open the request'))));
}

function timeline(cmds, truncated) {
  const rows = cmds.map((c) => el('tr', { 'data-id': c.id, 'data-status': c.status },
    el('td', { class: 'mono' }, c.id),
    el('td', {}, c.type),
    el('td', {}, el('span', { class: 'status status-' + c.status }, c.status)),
    el('td', {}, c.reason || ''),
    el('td', {}, c.created_by, c.approved_by ? el('span', { class: 'muted approved-by' }, ' approved by ' + c.approved_by) : null),
    el('td', {}, el('ul', { class: 'changes' },
      el('li', {}, 'requested ' + time(c.created_at)),
      c.delivered_at ? el('li', {}, 'delivered ' + time(c.delivered_at)) : null,
      c.acknowledged_at ? el('li', {}, 'acknowledged ' + time(c.acknowledged_at)) : null,
      c.completed_at ? el('li', {}, c.status + ' ' + time(c.completed_at)) : null,
      isOpen(c) ? el('li', { class: 'muted' }, 'expires ' + time(c.expires_at)) : null)),
    el('td', {}, c.receipt
      ? el('a', { href: '#/commands/' + encodeURIComponent(c.id) + '/receipt', class: c.verified ? 'ok' : 'bad' },
        c.verified ? 'verified ✓' : 'not verified')
      : el('span', { class: 'muted' }, c.unverified_reason && c.status === 'completed' ? c.unverified_reason : '—'))));
  return [table('commands', ['Command', 'Type', 'Status', 'Reason', 'By', 'Status changes', 'Receipt'], rows, 'No commands.'),
    truncated ? el('p', { class: 'muted' }, 'Showing the newest ' + PAGE * PAGES_MAX + ' commands.') : null];
}

// The typed confirmation for wipe and retire, naming the owner the admin must type.
function confirmDestructive(type, d) {
  const who = d.owner || d.id;
  const what = d.owner ? 'the owner\'s email address' : 'the device id';
  const phone = who + '\'s phone (' + (d.model || 'device') + ', ' + d.id + ')';
  const lines = type === 'wipe'
    ? ['The corporate half of ' + phone + ' will be erased: its volume key is destroyed and the ' +
        'hypervisor proves it with a signed receipt.',
      'The personal half is untouched.', 'This cannot be undone.']
    : ['The corporate half of ' + phone + ' will be erased as for a wipe, and the device leaves ' +
        'management: it must enroll again to come back.',
      'The personal half is untouched.', 'This cannot be undone.'];
  lines.push('To confirm, type ' + what + '.');
  return confirmTyped({ title: title(type) + ' ' + who + '\'s phone?', lines, expect: who,
    action: title(type) + ' corporate half' });
}

// Back to sign-in when the session has ended (as the router does for a failed render).
function signedOut(err) {
  if (!(err instanceof ApiError) || err.status !== 401) return false;
  sessionStorage.setItem('cleave.after', location.hash);
  location.hash = '#/signin?expired=1';
  return true;
}

// One shown device: its data, the parts rebuilt on each paint, and the polling loop.
class DeviceScreen {
  constructor(id, data, current) {
    this.id = id;
    this.path = '/api/v1/devices/' + encodeURIComponent(id);
    this.data = data;
    this.current = current;
    this.polls = 0;
    this.settle = 0;
    this.polling = false;
    this.head = el('div', { id: 'device-head' });
    // Kept across repaints, so the focus can rest here after an action (buttons are rebuilt).
    this.status = el('p', { id: 'action-status', role: 'status', class: 'muted', tabindex: '-1' });
    this.reason = el('input', { type: 'text', id: 'action-reason', maxlength: '400', placeholder: 'optional, kept with the command' });
    this.actions = el('div', { id: 'actions', class: 'actions', role: 'group', 'aria-label': 'Actions' });
    this.body = el('div', { id: 'device-body' });
    this.cmdBox = el('div', { id: 'timeline' });
    this.labels = new LabelsPanel(id);
  }

  say(cls, text) {
    this.status.className = cls;
    this.status.textContent = text;
  }

  oops(err) {
    if (!signedOut(err)) this.say('error', err.message);
  }

  async act(type) {
    if ((type === 'wipe' || type === 'retire') && !(await confirmDestructive(type, this.data.d))) {
      document.getElementById('action-' + type)?.focus();
      return;
    }
    this.say('muted', 'Sending ' + type + '…');
    try {
      const body = { type };
      if (this.reason.value.trim()) body.reason = this.reason.value.trim();
      const c = await api(this.path + '/commands', { method: 'POST', body,
        headers: { 'Idempotency-Key': crypto.randomUUID() } });
      this.reason.value = '';
      if (c.status === 'pending_approval')
        this.say('ok', title(type) + ' requested; it waits for approval by a second admin (' + c.approval_id + ').');
      else
        this.say('ok', title(type) + ' requested (' + c.id + ').');
    } catch (err) {
      if (signedOut(err)) return;
      this.say('error', err instanceof ApiError && err.status === 403
        ? 'Your role may not ' + type + ' devices.' : title(type) + ' failed: ' + err.message);
    }
    this.polls = 0;
    this.status.focus();
    await this.refresh();
    this.poll();
  }

  async cancel(c) {
    try {
      await api('/api/v1/commands/' + encodeURIComponent(c.id) + '/cancel', { method: 'POST' });
      this.say('ok', title(c.type) + ' canceled (' + c.id + ').');
    } catch (err) {
      if (signedOut(err)) return;
      this.say('error', err instanceof ApiError && err.status === 409
        ? 'Too late to cancel: the device already has the ' + c.type + '.' : 'Cancel failed: ' + err.message);
    }
    this.status.focus();
    await this.refresh();
  }

  paint() {
    const { d, cmds, truncated, approvals } = this.data;
    const focused = document.activeElement && document.activeElement.id;
    const want = offered(d, cmds, approvals);
    this.head.replaceChildren(...[badge(badgeOf(d, cmds)), approvalNote(approvals),
      pendingNote(cmds, (c) => this.cancel(c).catch((e) => this.oops(e)))].filter(Boolean));
    this.actions.replaceChildren(...want.map((a) => el('button', {
      type: 'button', id: 'action-' + a, class: a === 'wipe' || a === 'retire' ? 'danger' : 'plain',
      onclick: () => this.act(a).catch((e) => this.oops(e)),
    }, title(a))));
    if (!want.length) this.actions.append(el('span', { class: 'muted' }, 'No actions available.'));
    this.body.replaceChildren(fields(d));
    this.cmdBox.replaceChildren(...timeline(cmds, truncated).filter(Boolean));
    if (focused && document.activeElement !== document.getElementById(focused))
      document.getElementById(focused)?.focus();
  }

  async refresh() {
    const next = await load(this.id);
    if (!this.current()) return;
    this.data = next;
    this.paint();
  }

  // Worth another look: a command is open, or the proven state has not yet caught up with the
  // desired one (the receipt and the next attestation arrive a moment apart: SETTLE rounds).
  unsettled() {
    if (this.data.cmds.some(isOpen) || (this.data.approvals || []).length) {
      this.settle = 0;
      return true;
    }
    const cs = this.data.d.corporate_state || {};
    return cs.desired !== cs.reported && this.settle++ < SETTLE;
  }

  // One loop at a time; it ends when nothing is unsettled, after POLL_MAX rounds, or when the
  // router has moved on (current() is false).
  poll() {
    if (this.polling) return;
    this.polling = true;
    const tick = async () => {
      if (!this.current() || this.polls >= POLL_MAX || !this.unsettled()) {
        this.polling = false;
        return;
      }
      this.polls++;
      try {
        await this.refresh();
      } catch (err) {
        if (!this.current() || signedOut(err)) {
          this.polling = false;
          return;
        }
        this.say('error', 'Could not refresh: ' + err.message);
      }
      setTimeout(tick, POLL_MS);
    };
    setTimeout(tick, POLL_MS);
  }

  show() {
    const canAct = ['lock', 'unlock', 'refresh', 'rekey', 'wipe', 'retire'].some((a) => can(a));
    show(...[
      el('p', {}, el('a', { href: '#/devices' }, '← All devices')),
      el('h1', {}, 'Device ', el('span', { class: 'mono', id: 'device-id' }, this.data.d.id)),
      this.head,
      canAct ? el('section', { class: 'action-bar', 'aria-labelledby': 'actions-title' },
        el('h2', { id: 'actions-title' }, 'Actions'),
        el('p', { class: 'reason' }, el('label', { for: 'action-reason' }, 'Reason '), this.reason),
        this.actions,
        can('wipe') ? null : el('p', { class: 'muted', id: 'role-note' }, 'Wipe, retire and rekey need the admin role.'),
        this.status) : null,
      el('h2', {}, 'Device'), this.body,
      this.labels.element(),
      el('h2', {}, 'Commands'), this.cmdBox].filter(Boolean));
    this.labels.load().catch((e) => this.oops(e));
    this.paint();
    this.poll();
  }
}

export async function render(params, m, current) {
  const id = decodeURIComponent(m[1]);
  show(el('h1', {}, 'Device'), el('p', { class: 'muted' }, 'Loading…'));
  const data = await load(id);
  if (current()) new DeviceScreen(id, data, current).show();
}

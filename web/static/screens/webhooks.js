// Webhooks (#/webhooks, #/webhooks/{id}), admins only: the subscriptions with their state,
// a form to subscribe a URL to event types (the secret is shown once, in the create answer),
// and one subscription's page: enable or disable, rotate the secret (shown once again),
// delete, and its delivery log (newest first, paged) with a redeliver button per attempt.
// Every value from the API is inserted as text.
import { el, show, api, time, age, table, can, field, confirmTyped } from '../lib.js';

const PAGE = 25;

function stateCell(w) {
  if (w.enabled && w.delivery.failed_attempts > 0)
    return el('span', { class: 'hook-state bad' }, 'failing (' + w.delivery.failed_attempts + ' attempts)');
  return w.enabled ? el('span', { class: 'hook-state ok' }, 'enabled')
    : el('span', { class: 'hook-state' }, 'disabled');
}

// The card that shows a secret the one time the API gives it.
function secretCard(w, what) {
  return el('section', { class: 'card wide', id: 'new-secret', 'aria-live': 'polite' },
    el('h2', {}, what),
    el('p', {}, el('code', { class: 'mono', id: 'secret-value', tabindex: '0' }, w.secret)),
    el('p', { class: 'muted' }, 'Give it to the receiver now: it is shown only once. Receivers check the ' +
      'webhook-signature header with it (README, "Webhooks").'));
}

async function createForm(onDone) {
  const types = (await api('/api/v1/webhooks/event-types')).items;
  const url = el('input', { type: 'text', id: 'wh-url', name: 'url', required: true, spellcheck: 'false', autocomplete: 'off', placeholder: 'https://tickets.example.com/cleave' });
  const desc = el('input', { type: 'text', id: 'wh-desc', name: 'description', autocomplete: 'off', placeholder: 'what receives it' });
  const boxes = types.map((t) => el('label', { class: 'check' },
    el('input', { type: 'checkbox', name: 'events', value: t, id: 'wh-ev-' + t.replace('.', '-') }), ' ', t));
  const problem = el('p', { class: 'error', id: 'wh-error', role: 'alert', hidden: true });
  const f = el('form', { id: 'wh-form', class: 'wh-form' },
    el('label', { for: 'wh-url' }, 'URL'), url,
    el('label', { for: 'wh-desc' }, 'Description'), desc,
    el('span', { id: 'wh-events-label' }, 'Events'),
    el('div', { class: 'checks', role: 'group', 'aria-labelledby': 'wh-events-label' }, boxes),
    el('span'), el('button', { type: 'submit', id: 'wh-create' }, 'Create subscription'));
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    problem.hidden = true;
    const events = boxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => i.value);
    try {
      const w = await api('/api/v1/webhooks', { method: 'POST', body: { url: url.value.trim(), description: desc.value, events } });
      await onDone(w);
    } catch (err) {
      problem.textContent = err.message;
      problem.hidden = false;
    }
  });
  return [f, problem];
}

async function listView() {
  const page = await api('/api/v1/webhooks');
  const rows = page.items.map((w) => el('tr', { 'data-id': w.id },
    el('td', { class: 'url' }, el('a', { href: '#/webhooks/' + encodeURIComponent(w.id) }, w.url),
      w.description ? el('div', { class: 'muted small desc' }, w.description) : null),
    el('td', { class: 'events' }, w.events.join(', ')),
    el('td', { class: 'state' }, stateCell(w)),
    el('td', {}, w.delivery.next_attempt_at ? time(w.delivery.next_attempt_at) : '')));
  return table('webhooks', ['URL', 'Events', 'State', 'Next attempt'], rows, 'No webhook subscriptions yet.');
}

async function listScreen() {
  let fresh = null;
  const draw = async () => {
    const parts = [el('h1', {}, 'Webhooks'),
      el('p', { class: 'muted' }, 'Other systems told of events as they happen, signed per Standard Webhooks, ' +
        'retried for a day when they are down.')];
    parts.push(el('h2', {}, 'New subscription'), ...(await createForm(async (w) => { fresh = w; await draw(); })));
    if (fresh) parts.push(secretCard(fresh, 'Secret of the subscription to ' + fresh.url));
    parts.push(el('h2', {}, 'Subscriptions'), await listView());
    show(...parts);
    if (fresh) document.getElementById('secret-value').focus();
  };
  await draw();
}

function deliveryRow(hookId, d, onRedeliver) {
  const outcome = d.ok ? el('span', { class: 'ok' }, 'delivered')
    : el('span', { class: 'bad' }, d.error || 'failed');
  return el('tr', { 'data-id': String(d.id) },
    el('td', { title: time(d.at) }, age(d.at)),
    el('td', {}, d.event_type, el('div', { class: 'mono small' }, d.event_id)),
    el('td', {}, d.manual ? 'manual' : String(d.attempt)),
    el('td', { class: 'code' }, d.status_code === null ? '-' : String(d.status_code)),
    el('td', {}, d.latency_ms + ' ms'),
    el('td', { class: 'outcome' }, outcome),
    el('td', {}, el('button', { type: 'button', class: 'plain redeliver', 'aria-label': 'Redeliver event ' + d.event_id,
      onclick: () => onRedeliver(d) }, 'Redeliver')));
}

async function deliveries(id, cursor, onRedeliver) {
  const q = new URLSearchParams({ limit: String(PAGE) });
  if (cursor) q.set('cursor', cursor);
  const page = await api('/api/v1/webhooks/' + encodeURIComponent(id) + '/deliveries?' + q);
  const rows = page.items.map((d) => deliveryRow(id, d, onRedeliver));
  const next = page.next_cursor
    ? el('p', { class: 'pager' }, el('a', { href: '#/webhooks/' + encodeURIComponent(id) + '?cursor=' + encodeURIComponent(page.next_cursor), id: 'deliveries-next' }, 'Older attempts'))
    : null;
  return [table('deliveries', ['When', 'Event', 'Attempt', 'Status', 'Latency', 'Outcome', ''], rows, 'No delivery attempts yet.'), next]
    .filter(Boolean);
}

async function oneScreen(id, cursor) {
  let fresh = null, note = '';
  const path = '/api/v1/webhooks/' + encodeURIComponent(id);
  const draw = async () => {
    const w = await api(path);
    const toggle = el('button', { type: 'button', id: 'wh-toggle', class: w.enabled ? 'plain' : '' },
      w.enabled ? 'Disable' : 'Enable');
    toggle.addEventListener('click', async () => {
      await api(path, { method: 'PATCH', body: { enabled: !w.enabled } });
      note = w.enabled ? 'Disabled: events are kept and sent once it is enabled again.' : 'Enabled: waiting events are being sent.';
      await draw();
    });
    const rotate = el('button', { type: 'button', id: 'wh-rotate', class: 'plain' }, 'Rotate secret');
    rotate.addEventListener('click', async () => {
      const ok = await confirmTyped({ title: 'Rotate the secret of this subscription?',
        lines: ['The old secret stops at once: ' + w.url + ' must get the new one, or it will refuse what follows.'],
        expect: 'rotate', action: 'Rotate secret' });
      if (!ok) return;
      fresh = await api(path + '/rotate-secret', { method: 'POST', body: {} });
      note = '';
      await draw();
    });
    const del = el('button', { type: 'button', id: 'wh-delete', class: 'danger' }, 'Delete');
    del.addEventListener('click', async () => {
      const ok = await confirmTyped({ title: 'Delete this subscription?',
        lines: [w.url + ' gets no more events, and its delivery log goes too.'], expect: 'delete', action: 'Delete' });
      if (!ok) return;
      await api(path, { method: 'DELETE' });
      location.hash = '#/webhooks';
    });
    const redeliver = async (d) => {
      await api(path + '/deliveries/' + d.id + '/redeliver', { method: 'POST', body: {} });
      note = 'Event ' + d.event_id + ' will be sent again now.';
      await draw();
    };
    show(...[el('p', {}, el('a', { href: '#/webhooks' }, 'All webhooks')),
      el('h1', {}, 'Webhook ', el('span', { class: 'mono' }, w.url)),
      fresh ? secretCard(fresh, 'New secret') : null,
      el('p', { id: 'wh-note', class: 'notice', 'aria-live': 'polite', hidden: !note }, note),
      el('dl', { class: 'fields', id: 'wh-fields' },
        field('State', stateCell(w)),
        w.enabled ? null : field('Why', w.disabled_reason || ''),
        field('Description', w.description || '-'),
        field('Events', w.events.join(', ')),
        field('Failing since', time(w.delivery.failing_since, '-')),
        field('Next attempt', time(w.delivery.next_attempt_at, 'when an event comes')),
        field('Created', time(w.created_at) + ' by ' + w.created_by)),
      el('p', { class: 'actions wh-actions' }, toggle, rotate, del),
      el('h2', {}, 'Delivery log'),
      ...(await deliveries(id, cursor, redeliver))].filter(Boolean));
    if (fresh) document.getElementById('secret-value').focus();
  };
  await draw();
}

export async function render(params, match) {
  if (!can('manage')) {
    show(el('h1', {}, 'Webhooks'), el('p', { class: 'muted' }, 'Only admins manage webhook subscriptions.'));
    return;
  }
  if (match[1]) await oneScreen(decodeURIComponent(match[1]), params.get('cursor'));
  else await listScreen();
}

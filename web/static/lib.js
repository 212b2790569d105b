// Shared by every console screen: element building (text nodes only), the API client with the
// console's cookie session and CSRF token, and small formatting helpers.

export const main = document.getElementById('main');

// The signed-in admin ({id, name, role, csrf_token}) or null; set by sign-in and by
// GET /api/v1/session on load.
export const session = { me: null };

// Builds an element; string children become text nodes, attrs are set as properties/attributes.
// Nothing that came from the API is ever parsed as HTML.
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export function show(...nodes) {
  main.replaceChildren(...nodes);
}

export class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail);
    this.status = status;
    this.body = body;
  }
}

// Calls the REST API with the session cookie; state-changing calls carry X-CSRF-Token.
// Returns the parsed JSON body (null for 204). opts: {method, body (an object: sent as JSON),
// headers, raw: true to get the Response itself}.
export async function api(path, opts = {}) {
  const method = opts.method || 'GET';
  const headers = { Accept: 'application/json', ...(opts.headers || {}) };
  if (method !== 'GET' && method !== 'HEAD' && session.me && session.me.csrf_token)
    headers['X-CSRF-Token'] = session.me.csrf_token;
  let body;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  const res = await fetch(path, { method, headers, body, credentials: 'same-origin', cache: 'no-store' });
  if (opts.raw && res.ok) return res;
  let data = null;
  if (res.status !== 204) {
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
  }
  if (!res.ok) {
    const why = data && (data.detail || data.title) ? data.detail || data.title : res.statusText;
    throw new ApiError(res.status, why, data);
  }
  return data;
}

export function time(v, none = 'never') {
  return v ? new Date(v).toLocaleString() : none;
}

// "3 min ago" style age of an RFC 3339 time.
export function age(v) {
  if (!v) return '';
  const s = Math.max(0, Math.round((Date.now() - new Date(v).getTime()) / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ago';
  return Math.floor(s / 86400) + ' days ago';
}

// Who did something: the admin's email or the token's name when the API gives one (the id in
// its tooltip), else the id itself.
export function who(id, name) {
  return name
    ? el('span', { class: 'who', title: id, 'data-id': id }, name)
    : el('span', { class: 'mono', 'data-id': id }, id);
}

export function field(name, value) {
  return [el('dt', {}, name), el('dd', {}, value)];
}

export function compliance(c) {
  if (!c) return el('span', { class: 'muted' }, 'unknown');
  return c.compliant
    ? el('span', { class: 'ok' }, 'compliant')
    : el('span', { class: 'bad' }, 'not compliant');
}

// Whether the signed-in admin's role may do this (the API checks again; this only hides).
export function can(action) {
  const role = session.me ? session.me.role : '';
  if (role === 'admin') return true;
  if (role === 'helpdesk') return ['lock', 'unlock', 'refresh', 'read', 'enroll'].includes(action);
  if (role === 'auditor') return action === 'read';
  return false;
}

export function table(id, headings, rows, empty) {
  return el('table', { id },
    el('thead', {}, el('tr', {}, headings.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows.length ? rows
      : el('tr', {}, el('td', { colspan: String(headings.length), class: 'muted' }, empty))));
}

// The confirmation for destructive actions (wipe, retire, bulk): a modal <dialog> that says
// what will happen and to how many devices, and enables its button only when the admin has
// typed `expect` (the device's name or the count). Esc or Cancel declines. Resolves to
// true when confirmed. Element ids: #confirm, #confirm-input, #confirm-ok, #confirm-cancel.
export function confirmTyped({ title, lines, expect, action }) {
  return new Promise((resolve) => {
    const input = el('input', { type: 'text', id: 'confirm-input', autocomplete: 'off', spellcheck: 'false' });
    const ok = el('button', { type: 'submit', id: 'confirm-ok', class: 'danger', disabled: true }, action);
    const cancel = el('button', { type: 'button', id: 'confirm-cancel', class: 'plain' }, 'Cancel');
    const form = el('form', { method: 'dialog' },
      el('h2', { id: 'confirm-title' }, title),
      (lines || []).map((l) => el('p', {}, l)),
      el('label', { for: 'confirm-input' }, 'Type ', el('strong', { class: 'mono' }, expect), ' to confirm'),
      el('p', {}, input),
      el('p', { class: 'actions' }, ok, cancel));
    const dlg = el('dialog', { id: 'confirm', 'aria-labelledby': 'confirm-title' }, form);
    let done = false;
    const finish = (v) => {
      if (done) return;
      done = true;
      dlg.close();
      dlg.remove();
      resolve(v);
    };
    input.addEventListener('input', () => { ok.disabled = input.value.trim() !== String(expect); });
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (input.value.trim() === String(expect)) finish(true);
    });
    cancel.addEventListener('click', () => finish(false));
    dlg.addEventListener('close', () => finish(false));
    document.body.append(dlg);
    dlg.showModal();
    input.focus();
  });
}

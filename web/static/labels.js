// The labels panel of the device page (issue 11 section 5): the device's key=value labels as
// text, and for admins a form to add or change one and a Remove button on each, each change a
// PATCH of /api/v1/devices/{id}/labels. Values may hold anything printable (markup, quotes):
// they are only ever inserted as text.
import { el, api, can, ApiError } from './lib.js';

export class LabelsPanel {
  constructor(deviceId) {
    this.path = '/api/v1/devices/' + encodeURIComponent(deviceId) + '/labels';
    this.root = el('section', { id: 'labels', 'aria-labelledby': 'labels-title' });
    this.list = el('ul', { id: 'label-list', class: 'labels' });
    this.status = el('p', { id: 'label-status', role: 'status', class: 'muted' });
    this.key = el('input', { type: 'text', id: 'label-key', maxlength: '63', autocomplete: 'off',
      pattern: '[A-Za-z0-9][A-Za-z0-9._\\/\\-]*', placeholder: 'dept', required: true });
    this.value = el('input', { type: 'text', id: 'label-value', maxlength: '127', autocomplete: 'off',
      placeholder: 'sales (empty for a plain name)' });
  }

  say(cls, text) {
    this.status.className = cls;
    this.status.textContent = text;
  }

  paint(labels) {
    const keys = Object.keys(labels).sort();
    this.list.replaceChildren(...keys.map((k) => el('li', { class: 'label', 'data-key': k },
      el('span', { class: 'label-text' }, labels[k] === '' ? k : k + '=' + labels[k]),
      can('labels') ? el('button', { type: 'button', class: 'plain small', 'aria-label': 'Remove label ' + k,
        onclick: () => this.change({ remove: [k] }, 'Removed ' + k + '.') }, 'Remove') : null,
      el('a', { class: 'small', href: '#/devices?' + new URLSearchParams({ label: query(k, labels[k]) }),
        'aria-label': 'Devices labelled ' + k }, 'others'))));
    if (!keys.length) this.list.append(el('li', { class: 'muted' }, 'No labels.'));
  }

  async change(body, done) {
    try {
      const r = await api(this.path, { method: 'PATCH', body });
      this.paint(r.labels);
      this.say('ok', done);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) throw err;
      this.say('error', err.message);
    }
  }

  async load() {
    const r = await api(this.path);
    this.paint(r.labels);
  }

  element() {
    const form = can('labels') ? el('form', { id: 'label-form', class: 'filters' },
      el('label', { class: 'filter', for: 'label-key' }, 'Key', this.key),
      el('label', { class: 'filter', for: 'label-value' }, 'Value', this.value),
      el('span', { class: 'filter-actions' }, el('button', { type: 'submit', id: 'label-add' }, 'Set label'))) : null;
    if (form) {
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        const k = this.key.value.trim();
        const set = {};
        set[k] = this.value.value;
        this.change({ set }, 'Set ' + k + '.').then(() => {
          if (this.status.className === 'ok') {
            this.key.value = '';
            this.value.value = '';
          }
        });
      });
    }
    this.root.replaceChildren(el('h2', { id: 'labels-title' }, 'Labels'), this.list, form, this.status);
    return this.root;
  }
}

// The label query that finds key=value (quoted unless a bare word), or key alone.
export function query(k, v) {
  if (v === '') return k;
  if (/^[A-Za-z0-9._/:@+-]+$/.test(v)) return k + '=' + v;
  return k + '="' + v.replace(/[\\"]/g, (c) => '\\' + c) + '"';
}

// Placeholder while issue 9's screens are built; replaced by the real screen.
import { el, show } from '../lib.js';

export async function render() {
  show(el('h1', {}, 'Not built yet'), el('p', { class: 'muted' }, 'This screen (audit) is being built.'));
}

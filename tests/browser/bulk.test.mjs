// The bulk operations screen in Chromium, against the real cleave-server that
// tests/integration/test_browser_bulk.c filled with N devices of owner team-ops (bulk batches of
// 5, so a bulk of them runs for seconds) and one finished bulk with a hostile reason.
// Selects all N matching, confirms a bulk lock and lands on #/bulk/{id}; the progress moves and
// a reload keeps it; cancels it (a plain confirmation) and checks through the API that it is
// canceled and queues nothing more; the list (nav link, state filter, the hostile reason as
// text); then helpdesk gets no Cancel on a running wipe bulk, and the API refuses its cancel.
// Usage: node bulk.test.mjs URL EMAIL PASSWORD OUTDIR N HOSTILE_REASON HELPDESK_EMAIL
// Exit: 0 when every check passed, 1 on a failure, 77 when the browser cannot run here.
import { start, signIn } from './lib.mjs';

const [url, email, password, outdir, n, hostile, helpdesk] = process.argv.slice(2);
if (!helpdesk) {
  console.error('usage: node bulk.test.mjs URL EMAIL PASSWORD OUTDIR N HOSTILE_REASON HELPDESK_EMAIL');
  process.exit(2);
}
const { page, check, shot, finish } = await start(outdir, { timeout: 15000 });
const apiGet = async (path) => (await page.request.get(url + path)).json();
// A POST as the signed-in console user (its session cookie and CSRF token).
const apiPost = async (path, data) => {
  const me = await apiGet('/api/v1/session');
  return page.request.post(url + path, { data, headers: { 'X-CSRF-Token': me.csrf_token } });
};
const counts = async () => page.textContent('#bulk-counts');
const doneOf = (text) => Number.parseInt(text, 10);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

try {
  await signIn(page, url, email, password);
  await page.waitForSelector('#devices tbody tr[data-id]');

  // Select all N matching, lock them: the console goes to the bulk's own screen.
  await page.goto(url + '/#/devices?q=team-ops&limit=20');
  await page.waitForFunction(() => (document.querySelector('#devices') || {}).dataset?.hash === location.hash);
  await page.check('#select-all');
  await page.click('#select-matching');
  check(await page.textContent('#selected-count') === `All ${n} matching selected`, `all ${n} matching selected`);
  await page.click('#bulk-lock');
  await page.waitForSelector('#confirm[open]');
  await page.fill('#confirm-input', n);
  await page.click('#confirm-ok');
  await page.waitForFunction(() => location.hash.startsWith('#/bulk/blk_'));
  const id = decodeURIComponent(page.url().split('#/bulk/')[1]);
  check(true, `the devices screen went to #/bulk/${id}`);
  await page.waitForSelector('#bulk-progress[data-state=running]');
  const first = doneOf(await counts());
  await page.waitForFunction((f) => Number.parseInt(document.querySelector('#bulk-counts').textContent, 10) > f, first);
  check(true, `the progress moves while it runs (from ${first})`);
  check(await page.isVisible('#bulk-cancel'), 'the admin is offered Cancel');
  await shot('01-bulk-running.png');
  await page.reload();
  await page.waitForSelector('#bulk-progress');
  check(await page.getAttribute('#bulk-progress', 'data-state') === 'running' && page.url().includes(id),
    'a reload keeps the bulk on screen, still running');

  // Cancel: a plain confirmation; Keep declines, Cancel bulk stops it.
  await page.click('#bulk-cancel');
  await page.waitForSelector('#confirm[open]');
  await shot('02-cancel-confirm.png');
  await page.click('#confirm-cancel');
  check(await page.getAttribute('#bulk-progress', 'data-state') === 'running', 'declining leaves it running');
  await page.click('#bulk-cancel');
  await page.waitForSelector('#confirm[open]');
  await page.click('#confirm-ok');
  await page.waitForSelector('#bulk-progress[data-state=canceled]');
  check(await page.locator('#bulk-cancel').count() === 0, 'no Cancel once canceled');
  const b = await apiGet('/api/v1/commands/bulk/' + encodeURIComponent(id));
  check(b.state === 'canceled' && b.queued > 0 && b.queued < Number(n) && b.ended_by,
    `the API says canceled after ${b.queued} of ${n}, by ${b.ended_by}`);
  check((await page.textContent('#bulk-ended')).includes(b.queued + ' commands already queued stay queued'),
    'the screen says what was queued stays queued');
  await sleep(1500);
  const later = await apiGet('/api/v1/commands/bulk/' + encodeURIComponent(id));
  check(later.queued === b.queued && later.state === 'canceled', 'nothing queued after the cancel');
  await shot('03-bulk-canceled.png');

  // The list, from the nav: newest first, the hostile reason as text, filter by state.
  await page.click('nav a[href="#/bulk"]');
  await page.waitForFunction(() => (document.querySelector('#bulks') || {}).dataset?.hash === location.hash);
  const ids = await page.locator('#bulks tbody tr[data-id]').evaluateAll((rs) => rs.map((r) => r.dataset.id));
  check(ids.length === 2 && ids[0] === id, 'the list shows both bulks, the newest first');
  const reasons = await page.locator('#bulks td.reason').allTextContents();
  check(reasons.includes(hostile), 'a reason with markup is shown as text');
  check(await page.locator('main img, main b').count() === 0, 'no element made from the reason');
  await shot('04-bulk-list.png');
  await page.selectOption('#f-state', 'canceled');
  await page.click('#bulk-filter button[type=submit]');
  await page.waitForFunction(() => location.hash === '#/bulk?state=canceled' &&
    (document.querySelector('#bulks') || {}).dataset?.hash === location.hash);
  check(await page.locator('#bulks tbody tr[data-id]').count() === 1, 'state=canceled lists the one canceled');
  await page.click(`#bulks tr[data-id="${id}"] a`);
  await page.waitForSelector('#bulk-progress[data-state=canceled]');
  check(true, 'a row opens its bulk');

  // Helpdesk: a running wipe bulk shows no Cancel, and the API refuses it.
  const wipe = await apiPost('/api/v1/commands/bulk', {
    type: 'wipe', reason: 'test wipe', filter: { q: 'team-ops' }, expected_count: Number(n),
  });
  check(wipe.status() === 202, `an admin wipe bulk starts (${wipe.status()})`);
  const wipeId = (await wipe.json()).id;
  await page.click('#signout');
  await page.waitForSelector('#signin');
  await signIn(page, url, helpdesk, password);
  await page.goto(url + '/#/bulk/' + encodeURIComponent(wipeId));
  await page.waitForSelector('#bulk-progress');
  check(await page.getAttribute('#bulk-progress', 'data-state') === 'running', 'the wipe bulk is running');
  check(await page.locator('#bulk-cancel').count() === 0, 'helpdesk is not offered Cancel on a wipe bulk');
  check((await page.textContent('#bulk-no-cancel')).includes('may order a wipe'), 'and is told why');
  await shot('05-helpdesk-wipe-bulk.png');
  const refused = await apiPost('/api/v1/commands/bulk/' + encodeURIComponent(wipeId) + '/cancel', {});
  check(refused.status() === 403, `the API refuses helpdesk's cancel (${refused.status()})`);
  await finish();
} catch (e) {
  await finish(e);
}

// The device list, bulk commands, compliance dashboard and command queue in Chromium, against
// the real cleave-server that tests/integration/test_browser_devices.c filled with 1,000
// simulated devices. Finds one device by owner, id prefix and fingerprint; filters; pages;
// bulk-locks the 50 devices of team "bulk" with the typed confirmation and checks through the
// API that exactly those 50 got a lock, then refreshes all 50 matching from pages of 20 by
// filter ("Select all 50 matching") and follows that bulk to done on its screen (#/bulk/{id}); compares the dashboard with the API and follows its
// links; filters and cancels in the command queue. A screenshot of each screen is saved.
// Usage: node devices.test.mjs URL EMAIL PASSWORD OUTDIR OWNER DEVICE_ID FINGERPRINT HOSTILE
//        HELPDESK_EMAIL (same password)
// Exit: 0 when every check passed, 1 on a failure, 77 when the browser cannot run here.
import { join } from 'node:path';
import { start, signIn } from './lib.mjs';

const [url, email, password, outdir, owner, deviceId, fingerprint, hostile, helpdesk] = process.argv.slice(2);
if (!helpdesk) {
  console.error('usage: node devices.test.mjs URL EMAIL PASSWORD OUTDIR OWNER DEVICE_ID FINGERPRINT HOSTILE HELPDESK_EMAIL');
  process.exit(2);
}
const { page, check, shot, finish } = await start(outdir, { timeout: 15000 });
const rows = () => page.locator('#devices tbody tr[data-id]').evaluateAll((rs) => rs.map((r) => r.dataset.id));
const apiGet = async (path) => (await page.request.get(url + path)).json();
// Waits until the table sel shows the current URL (each render stamps it with its hash).
const settled = (sel) => page.waitForFunction((s) => {
  const t = document.querySelector(s);
  return t && t.dataset.hash === location.hash;
}, sel);

// Submits the search form with the box set to text, and waits for the list to show want rows.
async function search(text) {
  await page.fill('#owner', text);
  await page.click('#search button[type=submit]');
  await page.waitForFunction((t) => new URLSearchParams(location.hash.split('?')[1] || '').get('q') === t, text);
  await settled('#devices');
}

// All lock commands (id -> device) through the API.
async function locks() {
  const m = new Map();
  let cursor = '';
  for (let i = 0; i < 10; i++) {
    const p = await apiGet('/api/v1/commands?type=lock&limit=200' + (cursor ? '&cursor=' + cursor : ''));
    for (const c of p.items) m.set(c.id, c.device_id);
    if (!p.next_cursor) break;
    cursor = p.next_cursor;
  }
  return m;
}

try {
  await signIn(page, url, email, password);
  await page.waitForSelector('#devices tbody tr[data-id]');
  check((await rows()).length === 50, 'the first page shows 50 of the 1,000 devices');
  await shot('01-devices.png');

  // Search: by owner, by a device id prefix, by the hypervisor key fingerprint.
  await search(owner);
  check(JSON.stringify(await rows()) === JSON.stringify([deviceId]), `search by owner ${owner} finds exactly its device`);
  await shot('02-search-owner.png');
  await search(deviceId.slice(0, 12));
  check((await rows()).includes(deviceId), `search by id prefix ${deviceId.slice(0, 12)} finds the device`);
  await search(fingerprint);
  check(JSON.stringify(await rows()) === JSON.stringify([deviceId]), 'search by fingerprint finds exactly the device');
  await shot('03-search-fingerprint.png');
  await page.reload();
  await settled('#devices');
  check(await page.inputValue('#owner') === fingerprint && (await rows()).length === 1, 'reload keeps the search');

  // Hostile owner: markup is text.
  await search('<img');
  const ownerText = await page.locator('#devices tbody tr[data-id] .owner').first().textContent();
  check(ownerText === hostile, 'an owner with markup is shown as text');
  check(await page.locator('main img').count() === 0, 'no element made from the owner');

  // Filters: the five devices locked beforehand; the URL holds the filter, back returns.
  await page.goto(url + '/#/devices');
  await settled('#devices');
  await page.selectOption('#f-desired', 'locked');
  await page.click('#search button[type=submit]');
  await page.waitForFunction(() => location.hash.includes('desired=locked') &&
    document.querySelectorAll('#devices tbody tr[data-id]').length === 5);
  const apiLocked = await apiGet('/api/v1/devices?desired=locked&limit=200');
  check(apiLocked.items.length === 5, 'the API agrees: 5 devices with desired state locked');
  await shot('04-filter-locked.png');
  await page.selectOption('#f-compliance', 'reason:state_differs');
  await page.selectOption('#f-sort', 'owner:asc');
  await page.click('#search button[type=submit]');
  await page.waitForFunction(() => location.hash.includes('reason=state_differs') && location.hash.includes('sort=owner'));
  await page.waitForFunction(() => document.querySelectorAll('#devices tbody tr[data-id]').length === 5);
  const owners = await page.locator('#devices tbody tr[data-id] .owner').allTextContents();
  check(owners.join() === [...owners].sort((a, b) => a.toLowerCase() < b.toLowerCase() ? -1 : 1).join(), 'sorted by owner');
  await page.goBack();
  await page.waitForFunction(() => !location.hash.includes('reason=') && location.hash.includes('desired=locked'));
  check(await page.inputValue('#f-desired') === 'locked', 'back restores the previous filter');

  // Paging at 1,000 devices: next, next, back.
  await page.goto(url + '/#/devices?sort=owner');
  await settled('#devices');
  const p1 = await rows();
  await page.click('#next');
  await settled('#devices');
  const p2 = await rows();
  check(p2.length === 50 && !p2.some((id) => p1.includes(id)), 'page 2 holds 50 other devices');
  await page.click('#next');
  await settled('#devices');
  const p3 = await rows();
  check(p3.length === 50 && !p3.some((id) => p1.includes(id) || p2.includes(id)), 'page 3 too');
  await shot('05-page3.png');
  await page.goBack();
  await settled('#devices');
  check((await rows())[0] === p2[0], 'back returns to page 2');

  await page.selectOption('#f-limit', '200');
  await page.click('#search button[type=submit]');
  await page.waitForFunction(() => location.hash.includes('limit=200'));
  await settled('#devices');
  check((await rows()).length === 200, '200 per page when asked');

  // Bulk lock of team "bulk": select all on the page, type the count.
  const before = await locks();
  await search('team-bulk');
  await page.waitForFunction(() => document.querySelectorAll('#devices tbody tr[data-id]').length === 50);
  const team = await rows();
  await page.check('#select-all');
  check(await page.textContent('#selected-count') === '50 selected', 'select all on the page selects 50');
  await page.click('#bulk-lock');
  await page.waitForSelector('#confirm[open]');
  check((await page.textContent('#confirm-title')) === 'Lock 50 devices', 'the confirmation names the action and count');
  await page.fill('#confirm-input', '49');
  check(await page.isDisabled('#confirm-ok'), 'a wrong count does not confirm');
  await page.fill('#confirm-input', '50');
  await shot('06-bulk-confirm.png');
  await page.click('#confirm-ok');
  await page.waitForSelector('#bulk-results');
  check((await page.textContent('#bulk-results h2')).includes('50 queued'), 'the results say 50 queued');
  check(await page.locator('#bulk-table tr[data-outcome=queued]').count() === 50, 'a queued row per device');
  await shot('07-bulk-results.png');
  await page.locator('#bulk-results').screenshot({ path: join(outdir, '07b-bulk-results-table.png') });
  await page.screenshot({ path: join(outdir, '07c-list-viewport.png') });
  const after = await locks();
  const fresh = [...after].filter(([id]) => !before.has(id)).map(([, dev]) => dev).sort();
  check(fresh.length === 50 && JSON.stringify(fresh) === JSON.stringify([...team].sort()),
    `exactly the 50 selected devices got a lock command (${fresh.length})`);
  // Again: nothing new, each is already pending.
  await page.check('#select-all');
  await page.click('#bulk-lock');
  await page.waitForSelector('#confirm[open]');
  await page.fill('#confirm-input', '50');
  await page.click('#confirm-ok');
  await page.waitForFunction(() => (document.querySelector('#bulk-results h2') || {}).textContent?.includes('50 already pending'));
  check((await locks()).size === after.size, 'a second bulk lock queues nothing new');

  // More matching than the page: "Select all 50 matching" sends the filter and the count, and
  // the console goes to the bulk's screen, which follows its progress until it is done.
  await page.goto(url + '/#/devices?q=team-bulk&limit=20');
  await settled('#devices');
  check((await rows()).length === 20, 'team "bulk" over pages of 20');
  check(await page.inputValue('#f-limit') === '20', '"Per page" shows the URL\'s 20, not 50');
  check(await page.locator('#select-matching').count() === 0, 'no "select all matching" before the page is selected');
  await page.check('#select-all');
  await page.waitForSelector('#select-matching');
  check(await page.textContent('#select-matching') === 'Select all 50 matching', 'offers all 50 matching devices');
  await page.click('#select-matching');
  check(await page.textContent('#selected-count') === 'All 50 matching selected', 'all 50 matching selected');
  await shot('07d-select-all-matching.png');
  await page.click('#bulk-refresh');
  await page.waitForSelector('#confirm[open]');
  check((await page.textContent('#confirm-title')) === 'Refresh 50 matching devices', 'the confirmation names all 50 matching');
  await page.fill('#confirm-input', '20');
  check(await page.isDisabled('#confirm-ok'), 'the page\'s count does not confirm all matching');
  await page.fill('#confirm-input', '50');
  await page.click('#confirm-ok');
  await page.waitForFunction(() => location.hash.startsWith('#/bulk/blk_'));
  check(true, 'the console goes to the bulk\'s own screen');
  await page.waitForSelector('#bulk-progress[data-state=done]');
  check((await page.textContent('#bulk-counts')).startsWith('50 done: 50 queued'), 'the progress ends with 50 queued');
  await shot('07e-bulk-by-filter-done.png');
  const refreshes = await apiGet('/api/v1/commands?type=refresh&limit=200');
  const refreshed = new Set(refreshes.items.map((c) => c.device_id));
  const teamAll = (await apiGet('/api/v1/devices?q=team-bulk&limit=200')).items.map((d) => d.id);
  check(refreshes.items.length === 50 && teamAll.length === 50 && teamAll.every((id) => refreshed.has(id)),
    `every device of team "bulk" got exactly one refresh (${refreshes.items.length})`);

  // The dashboard matches the API, and its links filter the list.
  await page.click('nav a[href="#/dashboard"]');
  await page.waitForSelector('#dash-reasons');
  const sum = await apiGet('/api/v1/devices/summary');
  check(await page.textContent('#tile-total .tile-n') === String(sum.total) && sum.total === 1000, 'total 1,000 as the API says');
  check(await page.textContent('#tile-not .tile-n') === String(sum.not_compliant), 'not compliant as the API says');
  const differs = sum.reasons.find((r) => r.code === 'state_differs');
  check(differs.count === 55, `state differs: 55 (${differs.count})`);
  check(await page.textContent('#dash-reasons tr[data-code=state_differs] a') === '55', 'the dashboard shows 55 for it');
  const lockedRow = sum.corporate_states.find((c) => c.desired === 'locked' && c.reported === 'active');
  check(lockedRow && await page.textContent('#dash-states tr[data-state="locked/active"] a') === String(lockedRow.count),
    'corporate state counts as the API says');
  const keys = sum.hypervisor_keys;
  check(keys.tpm_endorsed === 3 && keys.software === 997 && keys.tpm_unendorsed === 0,
    `hypervisor keys: 3 hardware-attested, 997 software (${JSON.stringify(keys)})`);
  check(await page.textContent('#dash-keys tr[data-key=tpm_endorsed] td.num') === '3' &&
    await page.textContent('#dash-keys tr[data-key=software] td.num') === '997',
    'the dashboard shows the hardware-attested and software keys');
  check(await page.locator('#dash-keys tr[data-key=tpm_unendorsed]').count() === 0,
    'no row for TPM keys without endorsement when there are none');
  await page.locator('#dash-keys').scrollIntoViewIfNeeded();
  await shot('08-dashboard.png');
  await page.click('#dash-reasons tr[data-code=state_differs] a');
  await page.waitForFunction(() => location.hash.includes('reason=state_differs') &&
    document.querySelectorAll('#devices tbody tr[data-id]').length === 50);
  check(await page.isVisible('#next'), 'the reason link lists its 55 devices over two pages');
  check(await page.inputValue('#f-compliance') === 'reason:state_differs', 'the filter shows in the form');
  await page.goBack();
  await page.waitForSelector('#dash-states');
  await page.click('#dash-states tr[data-state="locked/active"] a');
  await page.waitForFunction(() => location.hash.includes('desired=locked') && location.hash.includes('reported=active'));
  await page.waitForSelector('#devices tbody tr[data-id]');
  check(true, 'the corporate state link filters the list');

  // The command queue: filter by type, cancel a queued lock.
  await page.click('nav a[href="#/commands"]');
  await page.waitForSelector('#commands tbody tr[data-id]');
  await page.selectOption('#f-type', 'lock');
  await page.selectOption('#f-status', 'queued');
  await page.click('#cmd-filter button[type=submit]');
  await page.waitForFunction(() => location.hash.includes('type=lock') && location.hash.includes('status=queued'));
  // The unfiltered list may still be on screen with 50 rows: wait for the filtered one to replace it.
  const onlyLocks = await page
    .waitForFunction(() => {
      const cells = [...document.querySelectorAll('#commands tbody tr[data-id] td:nth-child(2)')];
      return cells.length === 50 && cells.every((c) => c.textContent === 'lock');
    }, null, { timeout: 10000 })
    .then(() => true, () => false);
  check(onlyLocks, 'only lock commands listed');
  await shot('09-commands.png');
  const victim = await page.locator('#commands tbody tr[data-id]').first().getAttribute('data-id');
  await page.click(`#commands tr[data-id="${victim}"] button.cancel`);
  await page.waitForFunction((v) => (document.querySelector('#cmd-msg') || {}).textContent?.includes(v), victim);
  const canceled = await apiGet('/api/v1/commands/' + victim);
  check(canceled.status === 'canceled', 'the API shows the command canceled');
  check(await page.locator(`#commands tr[data-id="${victim}"]`).count() === 0, 'it left the queued list');
  await page.click('#next');
  await page.waitForSelector('#prev');
  check(await page.locator('#commands tbody tr[data-id]').count() >= 1, 'the queue pages');
  await shot('10-commands-page2.png');

  // Helpdesk: lock, unlock and refresh in bulk, never wipe or retire.
  await page.click('#signout');
  await page.waitForSelector('#signin');
  await signIn(page, url, helpdesk, password);
  await settled('#devices');
  check(await page.isVisible('#bulk-lock') && await page.locator('#bulk-wipe, #bulk-retire').count() === 0,
    'helpdesk is offered bulk lock but not bulk wipe or retire');
  await finish();
} catch (e) {
  await finish(e);
}

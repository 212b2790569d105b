// Labels and groups in Chromium, against the real cleave-server that
// tests/integration/test_browser_labels.c enrolled six devices into, four labelled dept=sales
// (the fourth also "lost", the first with a hostile note). The device page shows the labels as
// text (the note's markup stays text) and sets and removes one; the device list filters by a
// label query; the Groups screen creates a group from a query, shows its member count and
// opens its members in the device list. A screenshot of each screen is saved.
// Usage: node labels.test.mjs URL EMAIL PASSWORD OUTDIR DEV0 DEV1 DEV2 DEV3 DEV4
// Exit: 0 when every check passed, 1 on a failure, 77 when the browser cannot run here.
import { start, signIn } from './lib.mjs';

const [url, email, password, outdir, ...devs] = process.argv.slice(2);
if (devs.length !== 5) {
  console.error('usage: node labels.test.mjs URL EMAIL PASSWORD OUTDIR DEV0 DEV1 DEV2 DEV3 DEV4');
  process.exit(2);
}
const HOSTILE = '<img src=x onerror=alert(1)>"\'; DROP TABLE devices; --';
const { page, check, shot, finish } = await start(outdir, { timeout: 15000 });
const rows = () => page.locator('#devices tbody tr[data-id]').evaluateAll((rs) => rs.map((r) => r.dataset.id).sort());
const settled = () => page.waitForFunction(() => {
  const t = document.querySelector('#devices');
  return t && t.dataset.hash === location.hash;
});
const labelTexts = () => page.locator('#label-list .label-text').allTextContents();
const same = (a, b) => JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());

try {
  await signIn(page, url, email, password);
  await page.waitForSelector('#devices tbody tr[data-id]');

  // The device page: labels as text, the hostile one too; set one, remove one.
  await page.goto(url + '/#/devices/' + devs[0]);
  await page.waitForSelector('#label-list .label-text');
  const texts = await labelTexts();
  check(texts.includes('dept=sales'), 'the device page shows dept=sales');
  check(texts.includes('note=' + HOSTILE), 'the hostile note is shown as text, exactly');
  check(await page.locator('#labels img').count() === 0, 'no element was made from the note');
  await shot('01-device-labels.png');
  await page.fill('#label-key', 'os');
  await page.fill('#label-value', 'android');
  await page.click('#label-add');
  await page.waitForFunction(() => [...document.querySelectorAll('#label-list .label-text')].some((e) => e.textContent === 'os=android'));
  check((await page.textContent('#label-status')).includes('Set os'), 'the status says the label was set');
  await page.click('#label-list li[data-key="note"] button');
  await page.waitForFunction(() => !document.querySelector('#label-list li[data-key="note"]'));
  check(same(await labelTexts(), ['dept=sales', 'os=android']), 'note removed, os added');
  await page.focus('#label-key');
  await shot('02-device-labels-edited.png');

  // The device list's label filter.
  await page.goto(url + '/#/devices');
  await page.waitForSelector('#f-label');
  await page.fill('#f-label', 'dept=sales AND NOT lost');
  await page.click('#search button[type=submit]');
  await page.waitForFunction(() => location.hash.includes('label='));
  await settled();
  check(same(await rows(), devs.slice(0, 3)), 'label filter: the three sales devices not lost');
  check(await page.inputValue('#f-label') === 'dept=sales AND NOT lost', 'the filter stays in its box');
  await shot('03-devices-label-filter.png');

  // The Groups screen: create, member count, open the members.
  await page.click('nav a[href="#/groups"]');
  await page.waitForSelector('#group-form');
  await page.fill('#group-name', 'sales');
  await page.fill('#group-query', 'dept = sales and not lost');
  await page.fill('#group-description', '<b>Sales</b> phones');
  await page.selectOption('#group-policy', 'strict');
  await page.click('#group-create');
  await page.waitForSelector('#groups tr[data-name="sales"]');
  const cells = await page.locator('#groups tr[data-name="sales"] td').allTextContents();
  check(cells[1] === 'dept=sales AND NOT lost', 'the query is shown as the server wrote it: ' + cells[1]);
  check(cells[2] === '<b>Sales</b> phones', 'the description is text');
  check(cells[3] === 'strict', 'the group gives policy strict');
  check(cells[4] === '3', 'member count 3: ' + cells[4]);
  check((await page.textContent('#group-status')).includes('Created group sales'), 'the status says so');
  await shot('04-groups.png');
  await page.click('#groups tr[data-name="sales"] a.members');
  await page.waitForFunction(() => location.hash.includes('group=sales'));
  await settled();
  check(same(await rows(), devs.slice(0, 3)), 'open members: the same three devices');
  check(await page.inputValue('#f-group') === 'sales', 'the group filter is selected');
  const pols = await page.locator('#devices tbody tr[data-id] td:nth-child(8)').allTextContents();
  check(pols.length === 3 && pols.every((p) => p === 'strict'), 'its members follow the group\'s policy: ' + pols.join(','));
  await shot('05-group-members.png');
  await page.reload();
  await settled();
  check(same(await rows(), devs.slice(0, 3)), 'after a reload, still the members');
  await finish();
} catch (err) {
  await finish(err);
}

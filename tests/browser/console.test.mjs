// The web console in a real browser: Debian's Chromium (headless), driven by playwright-core,
// against the real cleave-server that tests/integration/test_browser.c started and filled.
// Signs in with an API token, searches a device by its owner, opens it, reloads, goes back,
// and checks on the way that a hostile owner stays text (no dialog, no <img> made from it),
// that the console's CSP and nosniff headers are there and that the page raises no error or
// CSP violation. A screenshot of each screen goes to the output folder.
// Usage: node console.test.mjs URL TOKEN OUTDIR OWNER DEVICE_ID
// Exit: 0 when every check passed, 1 on a failure, 77 when the browser cannot run here.
import { mkdirSync, mkdtempSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const [url, token, outdir, owner, deviceId] = process.argv.slice(2);
const CHROMIUM = process.env.CLEAVE_CHROMIUM || '/usr/bin/chromium';
if (!url || !token || !outdir || !owner || !deviceId) {
  console.error('usage: node console.test.mjs URL TOKEN OUTDIR OWNER DEVICE_ID');
  process.exit(2);
}
if (!existsSync(CHROMIUM)) {
  console.log(`skipped: ${CHROMIUM} is missing (scripts/deps.sh installs chromium)`);
  process.exit(77);
}
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  console.log('skipped: playwright-core is missing (scripts/deps.sh runs npm ci in tests/browser)');
  process.exit(77);
}

mkdirSync(outdir, { recursive: true });
const failures = [];
const problems = []; // page errors, CSP violations, dialogs: each one is a failure
function check(cond, what) {
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`);
  if (!cond) failures.push(what);
}

const profile = mkdtempSync(join(outdir, 'profile-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  ignoreHTTPSErrors: true, // the server's self-signed certificate (the test made it just now)
  viewport: { width: 1200, height: 800 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const started = Date.now();
try {
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(10000);
  page.on('dialog', (d) => { problems.push(`a dialog opened: ${d.type()} ${d.message()}`); d.dismiss(); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  const shot = async (name) => page.screenshot({ path: join(outdir, name), fullPage: true });

  // The shell and its headers.
  const res = await page.goto(url + '/');
  const h = res.headers();
  check(res.status() === 200, 'GET / answers 200');
  check((h['content-security-policy'] || '').includes("script-src 'self'") &&
    (h['content-security-policy'] || '').includes("frame-ancestors 'none'"), 'CSP header on /');
  check(h['x-content-type-options'] === 'nosniff', 'X-Content-Type-Options: nosniff on /');
  await page.waitForSelector('#signin');
  await shot('01-signin.png');

  // A wrong token is refused and says so.
  await page.fill('#token', 'not-a-token');
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#signin .error');
  check(await page.isVisible('#signin'), 'a wrong token keeps the sign-in screen');
  problems.length = 0; // the 401 above is logged by Chromium as a console error, on purpose

  await page.fill('#token', token);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#devices tbody tr[data-id]');
  const n = await page.locator('#devices tbody tr[data-id]').count();
  check(n >= 3, `device list shows the enrolled devices (${n})`);
  check(page.url().endsWith('#/devices'), 'the device list has its URL');
  await shot('02-devices.png');

  // Paging by next_cursor: two a page, the third device on the next; back returns.
  await page.goto(url + '/#/devices?limit=2');
  await page.waitForFunction(() => document.querySelectorAll('#devices tbody tr[data-id]').length === 2);
  const first = await page.locator('#devices tbody tr[data-id]').evaluateAll((rs) => rs.map((r) => r.dataset.id));
  await page.click('#next');
  await page.waitForFunction(() => document.querySelectorAll('#devices tbody tr[data-id]').length === 1 &&
    !document.querySelector('#next'));
  const second = await page.locator('#devices tbody tr[data-id]').getAttribute('data-id');
  check(first.length === 2 && !first.includes(second), 'the next page shows the third device');
  await shot('02b-devices-page2.png');
  await page.goBack();
  await page.waitForFunction(() => document.querySelectorAll('#devices tbody tr[data-id]').length === 2);
  check(true, 'back returns to the first page');

  // Search by the hostile owner: its markup must show as text.
  await page.fill('#owner', owner);
  await page.click('#search button[type=submit]');
  await page.waitForFunction((o) => {
    const rows = document.querySelectorAll('#devices tbody tr[data-id]');
    return rows.length === 1 && rows[0].querySelector('.owner').textContent === o;
  }, owner);
  check(true, 'search by owner finds exactly the device, owner shown literally');
  check(await page.locator('main img, main svg').count() === 0, 'no element made from the owner');
  await shot('03-search.png');

  await page.click(`#devices a[href="#/devices/${deviceId}"]`);
  await page.waitForSelector('#device');
  check(await page.locator('#device .owner').textContent() === owner, 'detail shows the owner literally');
  const fp = await page.locator('#device .mono').first().textContent();
  check(/\S{16,}/.test(fp || ''), `hypervisor key fingerprint shown (${fp})`);
  const cmds = await page.locator('#commands tbody tr td.mono').count();
  check(cmds >= 1, `the device's commands are listed (${cmds})`);
  check(await page.locator('#commands').textContent().then((t) => t.includes('lock')), 'the queued lock command is shown');
  await shot('04-device.png');

  // Reload keeps the screen (the token is in sessionStorage); back returns to the search.
  await page.reload();
  await page.waitForSelector('#device');
  check(page.url().endsWith('#/devices/' + deviceId), 'reload keeps the device screen');
  await page.goBack();
  await page.waitForSelector('#devices');
  check(decodeURIComponent(page.url()).includes('owner='), 'back returns to the search');
  check(await page.inputValue('#owner') === owner, 'the search field keeps the owner after back');

  // Cached files revalidate: the module answers 304 to its own ETag.
  const js = await page.request.get(url + '/static/app.js');
  const etag = js.headers()['etag'];
  const again = await page.request.get(url + '/static/app.js', { headers: { 'If-None-Match': etag } });
  check(js.status() === 200 && etag && again.status() === 304, 'app.js revalidates with its ETag (304)');
  check(js.headers()['content-type'] === 'text/javascript; charset=utf-8', 'app.js is text/javascript');

  await page.click('#signout');
  await page.waitForSelector('#signin');
  check(await page.evaluate(() => sessionStorage.length) === 0, 'sign-out forgets the token');
  await shot('05-signed-out.png');
} catch (e) {
  failures.push(`exception: ${e.message}`);
  console.log(`FAIL exception: ${e.stack}`);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
for (const p of problems) {
  console.log(`FAIL ${p}`);
  failures.push(p);
}
console.log(`browser test: ${failures.length} failure(s) in ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${outdir}`);
process.exit(failures.length ? 1 : 0);

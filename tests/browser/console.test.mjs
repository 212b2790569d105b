// The web console in a real browser: Debian's Chromium (headless), driven by playwright-core,
// against the real cleave-server that tests/integration/test_browser.c started and filled.
// Signs in with an email and password, searches a device by its owner, opens it, reloads, goes
// back, and checks on the way that a hostile owner stays text (no dialog, no <img> made from
// it), that the console's CSP and nosniff headers are there and that the page raises no error
// or CSP violation. A screenshot of each screen goes to the output folder.
// Usage: node console.test.mjs URL EMAIL PASSWORD OUTDIR OWNER DEVICE_ID
// Exit: 0 when every check passed, 1 on a failure, 77 when the browser cannot run here.
import { start } from './lib.mjs';

const [url, email, password, outdir, owner, deviceId] = process.argv.slice(2);
if (!url || !email || !password || !outdir || !owner || !deviceId) {
  console.error('usage: node console.test.mjs URL EMAIL PASSWORD OUTDIR OWNER DEVICE_ID');
  process.exit(2);
}
const { page, check, shot, problems, finish } = await start(outdir);
try {
  // The shell and its headers.
  const res = await page.goto(url + '/');
  const h = res.headers();
  check(res.status() === 200, 'GET / answers 200');
  check((h['content-security-policy'] || '').includes("script-src 'self'") &&
    (h['content-security-policy'] || '').includes("frame-ancestors 'none'"), 'CSP header on /');
  check(h['x-content-type-options'] === 'nosniff', 'X-Content-Type-Options: nosniff on /');
  await page.waitForSelector('#signin');
  await shot('01-signin.png');

  // A wrong password is refused and says so.
  await page.fill('#email', email);
  await page.fill('#password', 'not the password');
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#signin .error');
  check(await page.isVisible('#signin'), 'a wrong password keeps the sign-in screen');

  await page.fill('#email', email);
  await page.fill('#password', password);
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
  const ident = await page.locator('#identity').textContent();
  check(/software key/.test(ident || '') && /not hardware-attested/.test(ident || ''),
    `a file-keystore hypervisor is shown as not hardware-attested (${ident})`);
  const cmds = await page.locator('#commands tbody tr td.mono').count();
  check(cmds >= 1, `the device's commands are listed (${cmds})`);
  check(await page.locator('#commands').textContent().then((t) => t.includes('lock')), 'the queued lock command is shown');
  await shot('04-device.png');

  // Reload keeps the screen (the session cookie); back returns to the search.
  await page.reload();
  await page.waitForSelector('#device');
  check(page.url().endsWith('#/devices/' + deviceId), 'reload keeps the device screen');
  await page.goBack();
  await page.waitForSelector('#devices');
  check(decodeURIComponent(page.url()).includes('q='), 'back returns to the search');
  check(await page.inputValue('#owner') === owner, 'the search field keeps the owner after back');

  // Cached files revalidate: the module answers 304 to its own ETag.
  const js = await page.request.get(url + '/static/app.js');
  const etag = js.headers()['etag'];
  const again = await page.request.get(url + '/static/app.js', { headers: { 'If-None-Match': etag } });
  check(js.status() === 200 && etag && again.status() === 304, 'app.js revalidates with its ETag (304)');
  check(js.headers()['content-type'] === 'text/javascript; charset=utf-8', 'app.js is text/javascript');

  await page.click('#signout');
  await page.waitForSelector('#signin');
  const after = await page.request.get(url + '/api/v1/devices?limit=1');
  check(after.status() === 401, `after sign-out the session cookie no longer works (${after.status()})`);
  await shot('05-signed-out.png');
  await finish();
} catch (e) {
  await finish(e);
}

// The employee portal in a real browser, in two phases run by tests/integration/
// test_browser_portal.c around a real enrollment.
//
// console URL OUTDIR EMAIL PASSWORD EXPIRED_TOKEN
//   An admin creates enrollment links in the console (#/enrollment) and sees each as a link and
//   a QR code; a hostile owner stays text (on the console and on the employee's page); revoke
//   works. The employee's page shows the three lists; they change when the policy changes
//   (they are generated). Unknown and expired links say so. Writes enroll-command.txt (the
//   command exactly as the page shows it), enroll-url.txt, and element screenshots of the QR
//   codes (qr-console.png, qr-page.png) that the C side decodes with zbarimg.
// device URL OUTDIR ENROLL_URL DEVICE_LINK
//   After the C side ran that command: the link is used up and says so; the device page from
//   `cleave-agent status` shows the state and the receipts; "leave the company" needs the typed
//   word, then the retire's receipt shows verified and the page says the phone has left.
// Exit: 0 when every check passed, 1 on a failure, 77 when the browser cannot run here.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, signIn } from './lib.mjs';

const [mode, url, outdir, ...rest] = process.argv.slice(2);
if (!['console', 'device'].includes(mode) || !url || !outdir || rest.length < 2) {
  console.error('usage: node portal.test.mjs console URL OUTDIR EMAIL PASSWORD EXPIRED_TOKEN\n' +
    '       node portal.test.mjs device URL OUTDIR ENROLL_URL DEVICE_LINK');
  process.exit(2);
}
const HOSTILE = '"><script>alert(1)</script><img/src=x/onerror=alert(2)>@evil.example';
const t = await start(outdir);
const { page, check, shot, finish, problems } = t;

// Opens a page whose status is meant to be an error (an unknown or dead link): Chromium logs
// that status as a console error, which here is expected, so exactly that one is taken back.
async function gotoRefused(target, status) {
  const n = problems.length;
  const r = await page.goto(target);
  const at = problems.findIndex((p, i) => i >= n && p.includes(`status of ${status} `));
  if (r.status() === status && at >= 0) problems.splice(at, 1);
  return r;
}

// The items of one of the three lists on the enrollment page.
const items = (id, p = page) => p.locator(`#${id} li`).allTextContents();

// Waits until the image has loaded and has a size; true when it has.
async function loaded(sel, p = page) {
  await p.waitForFunction((s) => {
    const i = document.querySelector(s);
    return i && i.complete && i.naturalWidth > 0;
  }, sel);
  return true;
}

// Creates an enrollment link on the console screen; returns its URL.
async function createLink(owner, uses) {
  await page.fill('#et-owner', owner);
  await page.fill('#et-uses', String(uses));
  await page.selectOption('#et-expiry', String(7 * 86400));
  const before = await page.locator('#etokens tbody tr[data-id]').count();
  await page.click('#et-create');
  await page.waitForFunction((n) => document.querySelectorAll('#etokens tbody tr[data-id]').length === n + 1 &&
    document.querySelector('#new-token'), before);
  check(await page.locator('#new-token .owner').textContent() === owner, `the new link names its owner literally (${owner.slice(0, 20)}…)`);
  check(await loaded('#new-qr'), 'the new link has a QR code image that loads');
  return page.locator('#new-link').getAttribute('href');
}

async function consolePhase([email, password, expired]) {
  await signIn(page, url, email, password);
  await page.goto(url + '/#/enrollment');
  await page.waitForSelector('#et-form');
  await shot('01-enrollment-empty.png');

  // A hostile owner: text on the console and on its enrollment page; no dialog may open.
  const hostileUrl = await createLink(HOSTILE, 1);
  check(await page.locator('#etokens tbody tr td.owner').first().textContent() === HOSTILE, 'the list shows the hostile owner as text');
  check(await page.locator('main script, main img:not(#new-qr)').count() === 0, 'nothing made from the hostile owner');
  await shot('02-enrollment-hostile.png');
  const hp = await t.newPage();
  await hp.goto(hostileUrl);
  const see = await items('list-see', hp);
  check(see.some((s) => s.includes(HOSTILE)), 'the employee page names the hostile owner as text');
  check(await hp.locator('main script, main img:not(#enroll-qr)').count() === 0, 'the employee page made nothing from it');
  await shot('03-portal-hostile.png', hp);
  await hp.close();
  // Revoke it: its status turns revoked and its button goes.
  const row = page.locator('#etokens tbody tr[data-id]').first();
  const rowId = await row.getAttribute('data-id');
  await row.locator('button.revoke').click();
  await page.waitForFunction((id) => document.querySelector(`#etokens tr[data-id="${id}"] td.status`)?.textContent === 'revoked', rowId);
  check(true, 'revoke marks the link revoked');

  // The employee's link.
  const link = await createLink('rita@example.com', 1);
  check(link.startsWith(url + '/enroll?token=clv_et_'), `the link is the enrollment page (${link.slice(0, url.length + 20)}…)`);
  await page.locator('#new-qr').screenshot({ path: join(outdir, 'qr-console.png') });
  await shot('04-enrollment-created.png');
  await page.reload();
  await page.waitForSelector('#etokens');
  check(await page.locator('#new-token').count() === 0, 'after a reload the secret link is gone (shown once)');

  // The employee's page: headers, lists, QR, command.
  const res = await page.goto(link);
  const h = res.headers();
  check(res.status() === 200, 'the enrollment page answers 200');
  check((h['content-security-policy'] || '').includes("script-src 'self'"), 'the enrollment page has the CSP');
  check(h['referrer-policy'] === 'no-referrer', 'the enrollment page sends no Referer (its URL holds the token)');
  const never = await items('list-never');
  const can = await items('list-can');
  check(['photos', 'messages', 'browsing', 'location', 'apps'].every((w) => never.join(' ').includes(w)), 'never-list names apps, photos, messages, browsing, location');
  check((await items('list-see')).some((s) => s.includes('rita@example.com')), 'can-see list names the owner');
  check(can.some((s) => s.includes('locks itself after 1 hour')) && can.some((s) => s.includes('erased after 2 days')), 'can-do list has the policy limits');
  check(can.filter((s) => s.includes('receipt')).length >= 4, 'each remote action names its receipt');
  check(await loaded('#enroll-qr'), 'the page shows the QR code');
  await page.locator('#enroll-qr').screenshot({ path: join(outdir, 'qr-page.png') });
  const command = (await page.locator('#enroll-command').textContent()).trim();
  check(command.startsWith('cleave-agent --state ~/.cleave enroll --server ' + url) && command.includes('--pin-sha256 '), 'the command names this server and its pin');
  writeFileSync(join(outdir, 'enroll-command.txt'), command + '\n');
  writeFileSync(join(outdir, 'enroll-url.txt'), link + '\n');
  await shot('05-portal-enroll.png');

  // The lists are generated: a policy change shows on a reload.
  const me = await (await page.request.get(url + '/api/v1/session')).json();
  const put = await page.request.put(url + '/api/v1/policies/standard', {
    headers: { 'X-CSRF-Token': me.csrf_token, 'Content-Type': 'application/json' },
    data: { offline: { lock_after_hours: 5, wipe_after_days: 9 }, max_failed_unlocks: 7, encryption: { key_rotation_days: 30 } },
  });
  check(put.ok(), `the policy changes (${put.status()} ${put.ok() ? '' : await put.text()})`);
  await page.reload();
  const can2 = await items('list-can');
  check(can2.some((s) => s.includes('locks itself after 5 hours')) && !can2.some((s) => s.includes('1 hour')), 'the lock limit follows the policy');
  check(can2.some((s) => s.includes('after 7 failed unlock')) && can2.some((s) => s.includes('every 30 days')), 'failed unlocks and key rotation appear');
  check(can2.some((s) => s.includes('erased after 9 days')) && !can2.some((s) => s.includes('2 days')), 'the wipe limit follows the policy');
  await shot('06-portal-policy-changed.png');

  // Links that cannot enroll.
  let r = await gotoRefused(url + '/enroll?token=clv_et_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 404);
  check(r.status() === 404 && (await page.locator('#enroll-error').textContent()).includes('not valid'), 'an unknown link says it is not valid');
  check(await page.locator('#enroll-command').count() === 0, 'no command for an unknown link');
  await shot('07-portal-unknown.png');
  r = await gotoRefused(url + '/enroll?token=' + expired, 410);
  check(r.status() === 410 && (await page.locator('#enroll-error').textContent()).includes('expired on'), 'an expired link says when it expired');
  await shot('08-portal-expired.png');
}

async function devicePhase([enrollUrl, deviceLink]) {
  let r = await gotoRefused(enrollUrl, 410);
  check(r.status() === 410 && (await page.locator('#enroll-error').textContent()).includes('used up'), 'the used link says it is used up');
  await shot('09-portal-used.png');

  r = await page.goto(deviceLink);
  check(r.status() === 200, 'the device page from `cleave-agent status` opens');
  check((await page.locator('#device-state').textContent()).startsWith('Active'), 'it shows the corporate half active');
  check(await page.locator('dl.facts').textContent().then((s) => s.includes('rita@example.com')), 'it names the owner');
  check(await page.locator('#receipts tbody tr').count() >= 1, 'it lists what was done (the policy)');
  await shot('10-device.png');

  // Without the word nothing happens; with it the retire is on its way.
  await page.fill('#confirm', 'nope');
  await page.click('#leave');
  await page.waitForSelector('#leave-error');
  check(await page.locator('#leaving').count() === 0, 'leaving needs the typed word');
  await page.fill('#confirm', 'leave');
  await page.click('#leave');
  await page.waitForSelector('#leaving, #left');
  check(true, 'leave the company queues the retire');
  await shot('11-device-leaving.png');

  // The agent carries it out: reload until the retire's receipt shows verified.
  let verified = false;
  for (let i = 0; i < 60 && !verified; i++) {
    await page.waitForTimeout(500);
    await page.reload();
    verified = (await page.locator('#receipts tr[data-type=retire] td.ok').count()) === 1 &&
      (await page.locator('#left').count()) === 1;
  }
  check(verified, 'the retire receipt shows verified and the phone has left');
  check((await page.locator('#device-state').textContent()).startsWith('Retired'), 'the state says retired');
  await shot('12-device-retired.png');
}

try {
  if (mode === 'console') await consolePhase(rest);
  else await devicePhase(rest);
  await finish();
} catch (e) {
  await finish(e);
}

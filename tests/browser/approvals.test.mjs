// The two-person rule in a real browser, against the real cleave-server that
// tests/integration/test_browser_approvals.c started with two_person_rule = 1. Ann (TOTP) wipes
// the device (whose owner is markup) with a reason made of markup: the device page must say the
// wipe waits for a second admin and offer no second wipe; the Approvals screen shows her request
// as text, with Cancel and the override but no Approve. Bob (TOTP) approves it there; the
// device page then shows the wipe queued, no longer waiting; he also makes an API token with
// the approve permission on the Admins screen.
// Usage: node approvals.test.mjs URL OUTDIR DEVICE_ID OWNER REASON ASKER ASKER_TOTP_SECRET
//        APPROVER APPROVER_TOTP_SECRET PASSWORD
// Exit: 0 when every check passed, 1 on a failure, 77 when the browser cannot run here.
import { createHmac } from 'node:crypto';
import { start, signIn } from './lib.mjs';

const [url, outdir, deviceId, owner, reason, asker, askerKey, approver, approverKey, password] = process.argv.slice(2);
if (!password) {
  console.error('usage: node approvals.test.mjs URL OUTDIR DEVICE_ID OWNER REASON ASKER KEY APPROVER KEY PASSWORD');
  process.exit(2);
}

// RFC 4648 base32 and the RFC 6238 code (SHA-1, 30 s, 6 digits) of a key now.
function unbase32(s) {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let acc = 0;
  const out = [];
  for (const ch of s) {
    acc = (acc << 5) | abc.indexOf(ch);
    bits += 5;
    if (bits >= 8) {
      out.push((acc >> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}
function code(key) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000)));
  const h = createHmac('sha1', unbase32(key)).update(msg).digest();
  const o = h[h.length - 1] & 0xf;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1000000).padStart(6, '0');
}

const { page, check, shot, finish } = await start(outdir, { viewport: { width: 1280, height: 900 } });
const devUrl = url + '/#/devices/' + encodeURIComponent(deviceId);

async function noMarkup(where) {
  check(await page.locator('main img, main b, main script:not([src])').count() === 0,
    `${where}: nothing from the API became an element`);
}

try {
  // Ann asks for the wipe.
  await signIn(page, url, asker, password, code(askerKey));
  await page.goto(devUrl);
  await page.waitForSelector('#action-wipe');
  await page.fill('#action-reason', reason);
  await page.click('#action-wipe');
  await page.waitForSelector('#confirm');
  await page.fill('#confirm-input', owner);
  await page.click('#confirm-ok');
  await page.waitForSelector('#approval-wait');
  const note = await page.locator('#approval-wait').textContent();
  check(note.includes('waiting for approval by a second admin'), 'the device page says the wipe waits for a second admin');
  check((await page.locator('#action-status').textContent()).includes('waits for approval'),
    'the action status says the wipe waits for approval');
  check(await page.locator('#action-wipe').count() === 0, 'no second wipe is offered while one waits');
  check(await page.locator('#corp-badge[data-phase=none]').count() === 1, 'nothing was sent to the device');
  await noMarkup('device page');
  await shot('01-device-waiting.png');

  await page.click('#approval-wait a');
  await page.waitForSelector('#approvals tr[data-status=pending]');
  const row = page.locator('#approvals tr[data-status=pending]').first();
  check((await row.locator('td.reason').textContent()) === reason, 'the reason is shown literally');
  check((await row.locator('td.requester').textContent()) === asker, 'the requester is shown by email, not id');
  check(await row.locator('button.approve').count() === 0, 'the requester is offered no Approve');
  check(await row.locator('button.cancel').count() === 1 && await row.locator('button.override').count() === 1,
    'the requester may cancel or override');
  await noMarkup('approval request');
  await shot('02-request-by-asker.png');
  // The override dialog asks for a real reason; declined here.
  await row.locator('button.override').click();
  await page.waitForSelector('#override');
  check(await page.locator('#override-ok').isDisabled(), 'the override needs a reason first');
  await page.fill('#override-reason', 'too short');
  check(await page.locator('#override-ok').isDisabled(), 'a reason under 10 characters is not enough');
  await shot('03-override-dialog.png');
  await page.keyboard.press('Escape');
  await page.waitForSelector('#override', { state: 'detached' });
  await page.click('#signout');
  await page.waitForSelector('#signin');

  // Bob approves.
  await signIn(page, url, approver, password, code(approverKey));
  await page.goto(url + '/#/approvals');
  await page.waitForSelector('#approvals tr[data-status=pending] button.approve');
  await shot('04-list-by-approver.png');
  await page.click('#approvals tr[data-status=pending] button.approve');
  await page.waitForFunction(() => (document.getElementById('approval-msg')?.textContent || '').startsWith('Approved'));
  check(await page.locator('#approvals tr[data-status=pending]').count() === 0, 'nothing is left pending');
  await page.goto(url + '/#/approvals?status=approved');
  await page.waitForSelector('#approvals tr[data-status=approved]');
  const decision = await page.locator('#approvals tr[data-status=approved] td.decision').first().textContent();
  check(decision === 'approved by ' + approver, `the approver is shown by email, not id: ${decision}`);
  await noMarkup('approved list');
  await shot('05-approved.png');
  // Bob (TOTP done) makes an API token that may approve, for his scripts.
  await page.goto(url + '/#/admins');
  await page.waitForSelector('#token-create');
  check(await page.locator('#token-approve').isDisabled(), 'approve is offered only for admin tokens');
  await page.fill('#token-name', 'approver script');
  await page.selectOption('#token-role', 'admin');
  await page.check('#token-approve');
  await page.click('#token-create button[type=submit]');
  await page.waitForSelector('#token-result');
  check(await page.locator('#tokens tr[data-name="approver script"]').count() === 1, 'the approve token is listed');
  await page.goto(devUrl);
  await page.waitForSelector('#corp-badge[data-phase=requested]');
  check(await page.locator('#approval-wait').count() === 0, 'the device no longer waits for approval');
  await noMarkup('device page after approval');
  await shot('06-device-wipe-queued.png');
  await finish();
} catch (err) {
  await finish(err);
}

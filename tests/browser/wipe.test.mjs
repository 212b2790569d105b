// The wipe from the console in a real browser, against the real cleave-server, cleave-agent and
// cleave-hv that tests/integration/test_browser_wipe.c started. Mode "full": a helpdesk account
// sees no wipe or retire and the API answers its session 403; the admin opens the device (whose
// owner is markup), wipes it through the typed confirmation while the agent is stopped
// (SIGSTOP) so the pending state can be seen and no second lock or wipe is offered, lets the
// agent go on and watches the badge reach "receipt verified ✓"; then the receipt view: every
// field, downloads of the receipt, ticket and key, and the page's openssl commands run on them
// (and fail on a tampered receipt). Mode "keyboard": the same wipe with Tab, Enter and typing.
// Mode "unverified": a simulated device's lock receipt that leaves out a required check; the
// badge and the receipt view must say it is not verified and why; a queued wipe is canceled; the
// retire dialog; then the second account is an auditor's (AGENT_PID is unused: 0).
// Usage: node wipe.test.mjs full|keyboard|unverified URL EMAIL PASSWORD OUTDIR OWNER DEVICE_ID AGENT_PID
//        [HELPDESK_EMAIL HELPDESK_PASSWORD]
// Exit: 0 when every check passed, 1 on a failure, 77 when the browser cannot run here.
import { execSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, signIn } from './lib.mjs';

const [mode, url, email, password, outdir, owner, deviceId, agentPid, hdEmail, hdPassword] = process.argv.slice(2);
if (!['full', 'keyboard', 'unverified'].includes(mode) || !url || !email || !password || !outdir || !owner || !deviceId || !agentPid) {
  console.error('usage: node wipe.test.mjs full|keyboard|unverified URL EMAIL PASSWORD OUTDIR OWNER DEVICE_ID AGENT_PID [HD_EMAIL HD_PASSWORD]');
  process.exit(2);
}
const WIPE_MS = 30000; // POST to verified receipt; ~1 s here, generous for a loaded machine
const { page, check, shot, finish } = await start(outdir, { viewport: { width: 1280, height: 900 } });
const devUrl = url + '/#/devices/' + encodeURIComponent(deviceId);
let stopped = false;
const agent = (sig) => {
  process.kill(Number(agentPid), sig);
  stopped = sig === 'SIGSTOP';
};

// Text in the page never became markup: the owner is shown literally and made no element.
async function ownerIsText(where, sel) {
  const t = await page.locator(sel).first().textContent();
  check(t === owner, `${where}: the owner is shown literally (${t})`);
  check(await page.locator('main img, main script:not([src])').count() === 0, `${where}: no element made from the owner`);
}

async function signOut() {
  await page.click('#signout');
  await page.waitForSelector('#signin');
}

async function waitVerified() {
  await page.waitForSelector('#corp-badge[data-phase=done][data-verified=yes]', { timeout: WIPE_MS });
  // The proven state follows the receipt: the screen keeps refreshing until it does.
  await page.waitForFunction(() => document.querySelector('#corp-badge .state').textContent === 'Corporate half: wiped',
    null, { timeout: WIPE_MS });
  const t = await page.locator('#corp-badge').textContent();
  check(t.includes('receipt verified ✓') && t.includes('Wipe'), `the badge says the wipe is done and verified (${t})`);
}

async function helpdesk() {
  await signIn(page, url, hdEmail, hdPassword);
  await page.goto(devUrl);
  await page.waitForSelector('#actions button');
  const ids = await page.locator('#actions button').evaluateAll((bs) => bs.map((b) => b.id));
  check(ids.includes('action-lock') && !ids.includes('action-wipe') && !ids.includes('action-retire') &&
    !ids.includes('action-rekey'), `helpdesk is offered lock but no wipe, retire or rekey (${ids})`);
  // The API refuses it anyway, with this very session (cookie and CSRF token).
  const status = await page.evaluate(async (id) => {
    const me = await (await fetch('/api/v1/session')).json();
    const r = await fetch('/api/v1/devices/' + encodeURIComponent(id) + '/commands', {
      method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token },
      body: JSON.stringify({ type: 'wipe' }) });
    return r.status;
  }, deviceId);
  check(status === 403, `a helpdesk session's wipe POST is refused (${status})`);
  await shot('01-helpdesk-device.png');
  await signOut();
}

async function wipeWithMouse() {
  await signIn(page, url, email, password);
  await page.goto(devUrl);
  await page.waitForSelector('#action-wipe');
  await ownerIsText('detail', '#device .owner');
  check(await page.locator('#corp-badge').getAttribute('data-phase') === 'none', 'before: no lock or wipe in effect');
  check(/^SHA256:\S{40,}$/.test(await page.locator('#fingerprint').textContent()), 'the hypervisor key fingerprint is shown');
  await shot('02-detail-before.png');

  // Cancel first: nothing is sent.
  await page.click('#action-wipe');
  await page.waitForSelector('dialog#confirm[open]');
  const text = await page.locator('dialog#confirm').textContent();
  check(text.includes(owner) && text.includes('personal half is untouched') && text.includes('cannot be undone') &&
    text.includes('owner\'s email address'), 'the dialog names the owner, what happens and what to type');
  check(await page.isDisabled('#confirm-ok'), 'the wipe button is disabled until the owner is typed');
  await page.fill('#confirm-input', owner.slice(0, -1));
  check(await page.isDisabled('#confirm-ok'), 'an almost-right owner does not enable it');
  await shot('03-confirm.png');
  await page.click('#confirm-cancel');
  await page.waitForSelector('dialog#confirm', { state: 'detached' });
  check(await page.locator('#commands tbody tr[data-id]').evaluateAll((rs) => !rs.some((r) => r.textContent.includes('wipe'))),
    'Cancel sends nothing');

  // The agent is held so the pending state stays on screen.
  agent('SIGSTOP');
  await page.click('#action-wipe');
  await page.fill('#confirm-input', owner);
  await page.click('#confirm-ok');
  await page.waitForSelector('#pending');
  const phase = await page.locator('#corp-badge').getAttribute('data-phase');
  check(phase === 'requested' || phase === 'delivered', `the badge shows the wipe pending (${phase})`);
  check(/Wipe pending since \d+ s ago/.test(await page.locator('#pending').textContent()), 'the pending wipe is shown with its age');
  const ids = await page.locator('#actions button').evaluateAll((bs) => bs.map((b) => b.id));
  check(!ids.includes('action-wipe') && !ids.includes('action-lock') && !ids.includes('action-retire'),
    `no second lock, wipe or retire while the wipe is pending (${ids})`);
  await page.waitForTimeout(3500); // one poll: still pending, still not offered
  check(await page.locator('#action-wipe').count() === 0, 'still no second wipe after a refresh');
  await shot('04-detail-pending.png');
  agent('SIGCONT');
  await waitVerified();
  check(await page.locator('#pending').count() === 0, 'the pending note is gone');
  check(await page.locator('#action-wipe').count() === 0, 'a wiped corporate half is not offered another wipe');
  await shot('05-detail-verified.png');
}

// Reads the page's openssl steps and runs each in dir; returns [{cmd, want, out, code}].
async function runSteps(dir) {
  const steps = await page.locator('#openssl li').evaluateAll((ls) => ls.map((l) => ({
    cmd: l.querySelector('pre.cmd').textContent, want: l.querySelector('.expect .mono').textContent })));
  return steps.map((s) => {
    try {
      return { ...s, out: execSync(s.cmd, { cwd: dir, shell: '/bin/bash', encoding: 'utf8', stdio: 'pipe' }), code: 0 };
    } catch (e) {
      return { ...s, out: (e.stdout || '') + (e.stderr || ''), code: e.status };
    }
  });
}

async function receiptView() {
  await page.click('#badge-receipt');
  await page.waitForSelector('#receipt-fields');
  check(page.url().includes('/receipt'), 'the badge links to the receipt view');
  await ownerIsText('receipt', '#receipt-about .owner');
  check(await page.locator('#verification').getAttribute('data-verified') === 'yes', 'the view shows the server verified it');
  check(await page.locator('#verification .bad').count() === 0, 'every check made again now passes');
  const names = await page.locator('#receipt-fields tbody tr').evaluateAll((rs) => rs.map((r) => r.dataset.field));
  for (const f of ['magic', 'version', 'type', 'result', 'hv_key', 'device_id', 'command_id', 'ticket_hash',
    'ticket_counter', 'seq', 'epoch_before', 'epoch_after', 'header_state', 'checks_run', 'checks_passed',
    'started_ms', 'finished_ms', 'prev_hash', 'sig'])
    check(names.includes(f), `receipt field ${f} is shown`);
  const val = async (f) => page.locator(`#receipt-fields tr[data-field="${f}"] td:nth-child(3)`).textContent();
  check(await val('magic') === 'CLVRCPT1' && (await val('type')).includes('wipe') && await val('device_id') === deviceId,
    'magic, type and device are decoded');
  check(Number(await val('epoch_after')) > Number(await val('epoch_before')), 'the key epoch moved forward');
  check(await page.locator('#checks tr[data-check=FRESH_VOLUME] .ok').count() === 1, 'FRESH_VOLUME passed');
  check(await page.locator('#ticket-fields tr[data-field=command_id] td:nth-child(3)').textContent() ===
    await val('command_id'), 'the ticket answered is the command\'s');
  check((await page.locator('#hv-pem').textContent()).startsWith('-----BEGIN PUBLIC KEY-----'), 'the key is shown as PEM');
  await shot('06-receipt.png');

  const dir = mkdtempSync(join(outdir, 'audit-'));
  try {
    for (const [id, name, size] of [['#dl-receipt', 'receipt.bin', 320], ['#dl-ticket', 'ticket.bin', 256], ['#dl-key', 'hv.pem', 0]]) {
      const [dl] = await Promise.all([page.waitForEvent('download'), page.click(id)]);
      check(dl.suggestedFilename() === name, `the download is named ${name}`);
      await dl.saveAs(join(dir, name));
      const n = statSync(join(dir, name)).size;
      check(size ? n === size : n > 100, `${name} has ${n} bytes`);
    }
    const ok = await runSteps(dir);
    check(ok.length === 5, `the page shows the auditor's ${ok.length} steps`);
    for (const s of ok) {
      const flat = s.out.replace(/\s+/g, ' ');
      const parts = s.want.split(/ \/ | /).filter(Boolean);
      check(s.code === 0 && parts.every((p) => flat.includes(p)), `"${s.cmd.split('\n').pop()}" prints ${s.want}`);
    }
    const both = ok[1].out.trim().split('\n');
    check(both.length === 2 && both[0] === both[1], 'the key inside the receipt is the downloaded key');
    // A receipt changed by one bit must fail the same commands: the test can fail.
    const r = readFileSync(join(dir, 'receipt.bin'));
    r[170] ^= 1; // epoch_after
    writeFileSync(join(dir, 'receipt.bin'), r);
    const bad = await runSteps(dir);
    check(bad[0].code !== 0 && bad[0].out.includes('Signature Verification Failure'), 'openssl rejects a tampered receipt');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// Presses Tab until sel has the focus (bounded); fails the check when it never does.
async function tabTo(sel, what) {
  for (let i = 0; i < 60; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((s) => document.activeElement && document.activeElement.matches(s), sel)) {
      check(await page.evaluate(() => document.activeElement.matches(':focus-visible')), `${what} shows its focus`);
      return;
    }
  }
  throw new Error(`Tab never reached ${what} (${sel})`);
}

async function wipeWithKeyboard() {
  await page.goto(url + '/#/signin');
  await page.waitForSelector('#signin');
  await tabTo('#email', 'the email field');
  await page.keyboard.type(email);
  await tabTo('#password', 'the password field');
  await page.keyboard.type(password);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#devices tbody tr[data-id]');
  await tabTo(`#devices a[href="#/devices/${deviceId}"]`, 'the device link');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#action-wipe');
  await tabTo('#action-wipe', 'the wipe button');
  await shot('k1-wipe-focused.png');
  await page.keyboard.press('Enter');
  await page.waitForSelector('dialog#confirm[open]');
  check(await page.evaluate(() => document.activeElement.id) === 'confirm-input', 'the dialog puts the focus in its field');
  await page.keyboard.type(owner);
  await shot('k2-confirm-typed.png');
  await page.keyboard.press('Enter');
  await page.waitForSelector('dialog#confirm', { state: 'detached' });
  await page.waitForFunction(() => document.activeElement.id === 'action-status');
  check(true, 'after the confirmation the focus rests on the action\'s status line');
  await waitVerified();
  await shot('k3-verified.png');
  await tabTo('#badge-receipt', 'the receipt link');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#receipt-fields');
  check(await page.locator('#verification').getAttribute('data-verified') === 'yes', 'the receipt view says verified');
  await tabTo('#dl-receipt', 'the receipt download');
}

// A lock whose receipt leaves out a check it needs: the badge and the receipt view say why.
async function unverified() {
  await signIn(page, url, email, password);
  await page.goto(devUrl);
  await page.waitForSelector('#corp-badge[data-phase=done]');
  await ownerIsText('detail', '#device .owner');
  const t = await page.locator('#corp-badge').textContent();
  check(await page.locator('#corp-badge').getAttribute('data-verified') === 'no' &&
    t.includes('receipt not verified: ') && t.includes('KEYS_ZEROED') && !t.includes('✓'),
  `the badge says the receipt is not verified, and why (${t})`);
  check(t.includes('Corporate half: active') && t.includes('wanted: locked'), 'an unproven lock does not move the proven state');
  await shot('u1-detail-unverified.png');
  await page.click('#badge-receipt');
  await page.waitForSelector('#receipt-fields');
  await ownerIsText('receipt', '#receipt-about .owner');
  check(await page.locator('#verification').getAttribute('data-verified') === 'no', 'the receipt view says not verified');
  check((await page.locator('#verification').textContent()).includes('KEYS_ZEROED'), 'and names the missing check');
  check(await page.locator('#checks tr[data-check=KEYS_ZEROED] .bad').textContent() === 'missing', 'the checks table marks KEYS_ZEROED missing');
  await shot('u2-receipt-unverified.png');

  // This device does not check in: a wipe stays queued, shown with its age, and can be canceled.
  await page.goto(devUrl);
  await page.click('#action-wipe');
  await page.fill('#confirm-input', owner);
  await page.click('#confirm-ok');
  await page.waitForSelector('#corp-badge[data-phase=requested]');
  check((await page.locator('#corp-badge').textContent()).includes('waiting for the device'), 'a queued wipe waits for the device');
  const ids = await page.locator('#actions button').evaluateAll((bs) => bs.map((b) => b.id));
  check(!ids.some((i) => ['action-lock', 'action-unlock', 'action-wipe', 'action-retire'].includes(i)),
    `no second lock, unlock, wipe or retire while the wipe is queued (${ids})`);
  await shot('u3-detail-queued.png');
  await page.click('#cancel-pending');
  await page.waitForSelector('#corp-badge .dropped');
  check(await page.locator('#pending').count() === 0 && await page.locator('#action-wipe').count() === 1,
    'canceled: nothing pending, the wipe is offered again');
  const after = await page.locator('#corp-badge').textContent();
  check(after.includes('A later wipe was canceled') && after.includes('receipt not verified') &&
    await page.locator('#corp-badge').getAttribute('data-phase') === 'done',
  `the badge is back on the lock in effect and mentions the canceled wipe (${after})`);
  await shot('u4-detail-canceled.png');
  check((await page.locator('#commands tbody tr[data-status=canceled]').count()) === 1, 'the timeline shows the canceled wipe');

  // Retire asks the same way and says the device leaves management; Esc declines.
  await page.click('#action-retire');
  await page.waitForSelector('dialog#confirm[open]');
  const rt = await page.locator('dialog#confirm').textContent();
  check(rt.includes('leaves management') && rt.includes('personal half is untouched') && rt.includes(owner),
    'the retire dialog says what retiring does and whose phone it is');
  await page.keyboard.press('Escape');
  await page.waitForSelector('dialog#confirm', { state: 'detached' });
  check(await page.locator('#commands tbody tr[data-id]').evaluateAll((rs) => !rs.some((r) => r.textContent.includes('retire'))),
    'Esc sends nothing');
  await signOut();

  // An auditor reads everything and may order nothing.
  await signIn(page, url, hdEmail, hdPassword);
  await page.goto(devUrl);
  await page.waitForSelector('#corp-badge');
  check(await page.locator('#actions, .action-bar, #cancel-pending').count() === 0, 'an auditor is offered no action');
  await page.click('#badge-receipt');
  await page.waitForSelector('#receipt-fields');
  check(await page.locator('#dl-receipt').count() === 1, 'an auditor can open the receipt and its downloads');
}

try {
  if (mode === 'unverified') {
    await unverified();
  } else if (mode === 'full') {
    await helpdesk();
    await wipeWithMouse();
    await receiptView();
  } else {
    await wipeWithKeyboard();
  }
  await finish();
} catch (e) {
  if (stopped) agent('SIGCONT');
  await finish(e);
}

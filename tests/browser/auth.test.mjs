// Admin identity in the console, in Debian's Chromium against the real cleave-server that
// tests/integration/test_browser_auth.c started. Three modes, one per C case:
//   main URL SETUP_LINK OUTDIR   fresh server: first-admin setup through the link from
//       DATA/admin-setup, sign-in with and without TOTP (codes computed here, RFC 6238, from the
//       secret the console showed), the Admins screen, CSRF refused, a helpdesk account without
//       the management controls, sign out everywhere ending a second browser's session.
//   expiry URL SETUP_LINK OUTDIR  session_idle_seconds = 60 and an admin made with the token:
//       the setup link says an admin exists (409); an idle session ends, the console returns to
//       sign-in and, after it, to the screen.
//   throttle URL EMAIL OUTDIR     refusal_limit = 12: bad passwords, then the right one refused,
//       then "too many attempts".
// Exit: 0 when every check passed, 1 on a failure, 77 when the browser cannot run here.
import { createHmac } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { start, signIn } from './lib.mjs';

const PASSWORD = 'correct horse battery staple';
const [mode, url, arg, outdir] = process.argv.slice(2);
if (!['main', 'expiry', 'throttle'].includes(mode) || !url || !arg || !outdir) {
  console.error('usage: node auth.test.mjs main|expiry|throttle URL SETUP_LINK|EMAIL OUTDIR');
  process.exit(2);
}

// RFC 6238 (HMAC-SHA-1, 30-second steps, 6 digits) from a base32 secret.
function base32(s) {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0, acc = 0;
  const out = [];
  for (const ch of s.replace(/=+$/, '').toUpperCase()) {
    const v = abc.indexOf(ch);
    if (v < 0) throw new Error('not base32: ' + s);
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out.push((acc >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}
function totp(secret, step = Math.floor(Date.now() / 30000)) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const h = createHmac('sha1', base32(secret)).update(msg).digest();
  const o = h[h.length - 1] & 0xf;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1000000).padStart(6, '0');
}
// RFC 6238 appendix B, SHA-1 at T = 59 s: 94287082, so 287082 in six digits.
if (totp('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', 1) !== '287082') throw new Error('TOTP helper is wrong');

const t = await start(outdir, { timeout: 15000 });
const { page, check, shot } = t;

// The text of the status/alert paragraph sel once it matches re.
async function says(p, sel, re) {
  await p.waitForFunction(([s, src]) => {
    const e = document.querySelector(s);
    return e && new RegExp(src).test(e.textContent);
  }, [sel, re.source]);
  return p.locator(sel).textContent();
}

async function fillSetup(p, email, name, pw, pw2) {
  await p.fill('#setup-email', email);
  await p.fill('#setup-name', name);
  await p.fill('#setup-password', pw);
  await p.fill('#setup-password2', pw2 === undefined ? pw : pw2);
  await p.click('#setup button[type=submit]');
}

async function signOut(p) {
  await p.click('#signout');
  await p.waitForSelector('#signin');
}

async function mainMode() {
  const code = arg.slice(arg.indexOf('#') + 1);
  // No code at all: the page says where the link is.
  await page.goto(url + '/setup');
  check(/admin-setup/.test(await says(page, '#setup-msg.error', /whole setup link/)), '/setup without a code says where the link is');
  // A wrong code: the page says so, the real code stays usable.
  await page.goto(url + '/setup#clv_su_' + 'A'.repeat(43));
  await page.waitForSelector('#setup-email');
  await fillSetup(page, 'first@example.com', 'First Admin', PASSWORD);
  check(/not valid, or it was used already/.test(await says(page, '#setup-msg.error', /not valid/)),
    'a wrong setup code: "not valid, or used already"');

  // The real link, as written to DATA/admin-setup (loaded afresh: not a fragment change).
  await page.goto('about:blank');
  const res = await page.goto(arg);
  check(res.status() === 200 && (res.headers()['content-security-policy'] || '').includes("frame-ancestors 'none'"),
    'GET /setup answers the console shell with its CSP');
  await page.waitForSelector('#setup-email');
  await shot('01-setup.png');
  await fillSetup(page, 'first@example.com', 'First Admin', PASSWORD, PASSWORD + 'x');
  check(/differ/.test(await says(page, '#setup-msg.error', /differ/)), 'different passwords: said so');
  await fillSetup(page, 'first@example.com', 'First Admin', 'short pw');
  check(/at least 12/.test(await says(page, '#setup-msg.error', /too short/)), 'short password: "at least 12 characters"');
  await fillSetup(page, 'not-an-email', 'First Admin', PASSWORD);
  const bad = await says(page, '#setup-msg.error', /check the form/);
  check(/email/.test(bad), `a bad email: the server's 422 shown (${bad})`);
  await shot('02-setup-error.png');
  await fillSetup(page, 'first@example.com', 'First <b>Admin</b>', PASSWORD);
  await page.waitForSelector('#nav:not([hidden])');
  await page.waitForSelector('#devices');
  check(new URL(page.url()).pathname === '/' && page.url().endsWith('#/devices') && !page.url().includes(code),
    `after setup: signed in on the device list, the code gone from the URL (${page.url()})`);
  check(await page.locator('#who').textContent() === 'First <b>Admin</b> (admin)', 'display name shown as text');

  // The link again: used.
  await page.goto(arg);
  await page.waitForSelector('#setup-email');
  await fillSetup(page, 'second@example.com', 'Second', PASSWORD);
  await says(page, '#setup-msg.error', /used already/);
  check(true, 'the used setup link is refused');

  // Sign-in without TOTP; a wrong password first.
  await page.goto(url + '/#/devices');
  await page.waitForSelector('#nav:not([hidden])');
  await signOut(page);
  await shot('03-signin.png');
  await page.fill('#email', 'first@example.com');
  await page.fill('#password', 'not the password at all');
  await page.click('#signin button[type=submit]');
  check(/email or password is wrong/.test(await says(page, '#signin-msg.error', /failed/)), 'a wrong password: one message');
  await shot('04-signin-error.png');
  await signIn(page, url, 'first@example.com', PASSWORD);
  check(true, 'sign-in without TOTP');

  // Admins screen: a helpdesk account with an authenticator, an API token shown once.
  await page.goto(url + '/#/admins');
  await page.waitForSelector('#admin-create');
  await page.fill('#new-email', 'help@example.com');
  await page.fill('#new-name', 'Help Desk');
  await page.selectOption('#new-role', 'helpdesk');
  await page.fill('#new-password', PASSWORD);
  await page.click('#admin-create button[type=submit]');
  await page.waitForSelector('#admins tr[data-email="help@example.com"]');
  check(/helpdesk/.test(await page.locator('#admins tr[data-email="help@example.com"]').textContent()), 'helpdesk account listed with its role');
  await page.click('#admins tr[data-email="help@example.com"] button.totp');
  await page.waitForSelector('#totp-result');
  const secret = (await page.locator('#totp-secret').textContent()).trim();
  const uri = (await page.locator('#totp-uri').textContent()).trim();
  check(/^[A-Z2-7]{16,}$/.test(secret) && uri.startsWith('otpauth://totp/') && uri.includes('secret=' + secret),
    `TOTP secret and otpauth URI shown (${secret.length} characters)`);
  await page.waitForFunction(() => document.querySelector('#admins tr[data-email="help@example.com"] td:nth-child(4)')
    ?.textContent === 'yes');
  // Two more: an auditor (signs in at the end) and a leaver, disabled with the typed confirmation.
  for (const [who, role] of [['audit@example.com', 'auditor'], ['leaver@example.com', 'admin']]) {
    await page.fill('#new-email', who);
    await page.fill('#new-name', role + ' ' + who);
    await page.selectOption('#new-role', role);
    await page.fill('#new-password', PASSWORD);
    await page.click('#admin-create button[type=submit]');
    await page.waitForSelector(`#admins tr[data-email="${who}"]`);
  }
  await page.click('#admins tr[data-email="leaver@example.com"] button.disable');
  await page.fill('#confirm-input', 'leaver@example.com');
  await page.click('#confirm-ok');
  await page.waitForFunction(() => document.querySelector('#admins tr[data-email="leaver@example.com"] td:nth-child(5)')
    ?.textContent === 'disabled');
  check(await page.locator('#admins tr[data-email="leaver@example.com"] button').count() === 0,
    'an account disabled after the typed confirmation, without actions left');
  await page.fill('#token-name', 'nightly <script>export</script>');
  await page.selectOption('#token-role', 'auditor');
  await page.click('#token-create button[type=submit]');
  await page.waitForSelector('#token-result');
  const tok = (await page.locator('#token-secret').textContent()).trim();
  check(tok.length >= 32, 'the new API token is shown once');
  await page.click('#token-secret-copy');
  await says(page, '#token-result', /Copied|Selected/);
  await shot('05-admins.png');
  const name = 'nightly <script>export</script>';
  await page.locator('#tokens tbody tr', { hasText: name }).locator('button.revoke').click();
  await page.fill('#confirm-input', name);
  await page.click('#confirm-ok');
  await page.waitForFunction((n) => [...document.querySelectorAll('#tokens tbody tr')]
    .some((r) => r.dataset.name === n && r.cells[5].textContent === 'revoked'), name);
  check(await page.locator('#token-result').count() === 0, 'the token revoked after the typed confirmation, its panel gone');

  // CSRF: the console's own session without X-CSRF-Token is refused, and a form on another
  // site posting to the API makes nothing.
  const st = await page.evaluate(async () => (await fetch('/api/v1/admins', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, credentials: 'same-origin',
    body: JSON.stringify({ email: 'csrf1@example.com', display_name: 'x', role: 'admin', password: 'correct horse battery' }),
  })).status);
  check(st === 403, `a console fetch without X-CSRF-Token: ${st}`);
  const evil = createServer((req, res) => {
    res.setHeader('Content-Type', 'text/html');
    res.end(`<!doctype html><form id="f" method="POST" action="${url}/api/v1/admins" enctype="text/plain">` +
      '<input name=\'{"email":"csrf2@example.com","display_name":"x","role":"admin","password":"correct horse battery","x":"\' value=\'"}\'>' +
      '<button>go</button></form>');
  });
  await new Promise((ok) => evil.listen(0, '127.0.0.1', ok));
  // Not watched like the console's pages: the browser's 401 and favicon 404 on the answer are
  // the attacker page's, not the console's.
  const other = await t.context.newPage();
  await other.goto(`http://127.0.0.1:${evil.address().port}/`);
  await Promise.all([other.waitForNavigation(), other.click('#f button')]);
  const answered = await other.evaluate(() => document.body.textContent);
  await other.close();
  evil.close();
  const names = await page.evaluate(async () => (await (await fetch('/api/v1/admins')).json()).items.map((a) => a.email));
  check(!names.includes('csrf1@example.com') && !names.includes('csrf2@example.com'),
    `nothing made by the forged requests (${answered.slice(0, 80)})`);

  // A second browser signed in as the same admin; "sign out everywhere" ends both.
  const { chromium } = await import('playwright-core');
  const browser2 = await chromium.launch({ executablePath: process.env.CLEAVE_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const ctx2 = await browser2.newContext({ ignoreHTTPSErrors: true });
    const p2 = await ctx2.newPage();
    p2.on('pageerror', (e) => t.problems.push('second browser: ' + e.message));
    await signIn(p2, url, 'first@example.com', PASSWORD);
    await p2.goto(url + '/#/audit');
    await p2.waitForSelector('#nav a[href="#/audit"][aria-current=page]');
    await page.goto(url + '/#/admins');
    await page.click('#signout-all');
    await page.waitForSelector('#signin');
    await p2.reload();
    await says(p2, '#signin-msg', /session has ended/);
    check(true, 'sign out everywhere ended the second browser\'s session');
    await p2.fill('#email', 'first@example.com');
    await p2.fill('#password', PASSWORD);
    await p2.click('#signin button[type=submit]');
    await p2.waitForSelector('#nav a[href="#/audit"][aria-current=page]');
    check(p2.url().endsWith('#/audit'), 'signed in again, the second browser is back on its screen (#/audit)');
  } finally {
    await browser2.close();
  }

  // The helpdesk: no sign-in without the code, then with it; no management controls.
  await page.fill('#email', 'help@example.com');
  await page.fill('#password', PASSWORD);
  await page.click('#signin button[type=submit]');
  await says(page, '#signin-msg.error', /failed/);
  check(true, 'an account with TOTP cannot sign in without the code');
  await signIn(page, url, 'help@example.com', PASSWORD, totp(secret));
  check((await page.locator('#who').textContent()).includes('(helpdesk)'), 'signed in with TOTP as the helpdesk');
  await page.goto(url + '/#/admins');
  await page.waitForSelector('#me');
  const controls = await page.locator('#admin-create, #token-create, button.disable, button.revoke, button.totp, #admins, #tokens').count();
  check(controls === 0, `the helpdesk sees no Admins management controls (${controls})`);
  await shot('06-admins-helpdesk.png');
  const forbidden = await page.evaluate(async (csrf) => (await fetch('/api/v1/tokens', {
    method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
    body: JSON.stringify({ name: 'x', role: 'admin' }),
  })).status, (await page.evaluate(async () => (await (await fetch('/api/v1/session')).json()).csrf_token)));
  check(forbidden === 403, `the API refuses a token to the helpdesk anyway (${forbidden})`);
  // Its own authenticator: a new key replaces the one the admin enrolled.
  await page.click('#totp-self');
  await page.waitForSelector('#totp-result');
  const mine = (await page.locator('#totp-secret').textContent()).trim();
  check(/^[A-Z2-7]{16,}$/.test(mine) && mine !== secret, 'the helpdesk sets up its own authenticator (a new key)');

  // The auditor sees the lists, without controls.
  await signOut(page);
  await signIn(page, url, 'audit@example.com', PASSWORD);
  await page.goto(url + '/#/admins');
  await page.waitForSelector('#admins tbody tr[data-email="leaver@example.com"]');
  const seen = await page.locator('#admins tbody tr[data-id], #tokens tbody tr[data-id]').count();
  const knobs = await page.locator('#admin-create, #token-create, button.disable, button.revoke, button.totp').count();
  check(seen >= 6 && knobs === 0, `the auditor sees ${seen} accounts and tokens and no management controls (${knobs})`);
  await shot('07-admins-auditor.png');
}

async function expiryMode() {
  // An admin exists (made with the token): the setup link says so.
  await page.goto(arg);
  await page.waitForSelector('#setup-email');
  await fillSetup(page, 'late@example.com', 'Late', PASSWORD);
  check(/created meanwhile/.test(await says(page, '#setup-msg.error', /meanwhile/)), 'setup after an admin exists: 409 explained');
  await shot('07-setup-conflict.png');

  await signIn(page, url, 'ops@example.com', PASSWORD);
  await page.goto(url + '/#/admins');
  await page.waitForSelector('#token-create');
  // Idle for a minute: the C test moves the session's last activity 61 s back in the server's
  // database when asked (age-request), rather than this script waiting the minute out.
  writeFileSync(join(outdir, 'age-request'), 'idle\n');
  for (let i = 0; i < 200 && !existsSync(join(outdir, 'age-done')); i++) await page.waitForTimeout(100);
  check(existsSync(join(outdir, 'age-done')), 'the session was aged past session_idle_seconds');
  // The screen is still up; its next call gets 401 and the console goes to sign-in.
  await page.fill('#token-name', 'after expiry');
  await page.click('#token-create button[type=submit]');
  const said = await says(page, '#signin-msg', /session has ended/);
  check(said.length > 0, 'after 60 s idle the console returns to sign-in: "Your session has ended"');
  await shot('08-session-ended.png');
  await page.fill('#email', 'ops@example.com');
  await page.fill('#password', PASSWORD);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#token-create');
  check(page.url().endsWith('#/admins'), 'after sign-in, back on the screen it was on');
  await page.goto(url + '/#/devices');
  await page.waitForSelector('#devices');
  check(true, 'the new session works');
}

async function throttleMode() {
  const attempt = async (pw) => {
    await page.fill('#email', arg);
    await page.fill('#password', pw);
    await page.click('#signin button[type=submit]');
    return says(page, '#signin-msg.error', /./);
  };
  await page.goto(url + '/#/signin');
  await page.waitForSelector('#signin');
  for (let i = 0; i < 5; i++) {
    await page.evaluate(() => { document.querySelector('#signin-msg').textContent = ''; });
    const m = await attempt('wrong password ' + i);
    check(/failed/.test(m), `bad password ${i + 1}: ${m}`);
  }
  await page.evaluate(() => { document.querySelector('#signin-msg').textContent = ''; });
  let m = await attempt(PASSWORD);
  check(/failed/.test(m) && await page.isVisible('#signin'), 'after 5 failures the right password is refused too (the account waits)');
  let many = false;
  for (let i = 0; i < 20 && !many; i++) {
    await page.evaluate(() => { document.querySelector('#signin-msg').textContent = ''; });
    many = /Too many/.test(await attempt('wrong again ' + i));
  }
  check(many, 'then the console says "Too many failed sign-in attempts"');
  await shot('09-signin-throttled.png');
  await page.evaluate(() => { document.querySelector('#signin-msg').textContent = ''; });
  m = await attempt(PASSWORD);
  check(/Too many/.test(m) && await page.isVisible('#signin'), 'the right password is refused while throttled');
}

try {
  if (mode === 'main') await mainMode();
  else if (mode === 'expiry') await expiryMode();
  else await throttleMode();
  await t.finish();
} catch (err) {
  await t.finish(err);
}

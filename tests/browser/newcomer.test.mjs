// The "done when", as a newcomer does it: open the setup link cleave-server wrote, set a
// password, create an enrollment link in the console, open it as the employee, paste its command
// into `scripts/phone.sh` (what `make phone` runs: cleave-hv plus the agent on this machine),
// find the phone in the console, wipe it through the typed confirmation and watch the badge
// reach "receipt verified ✓", then open the receipt.
// Usage: node newcomer.test.mjs URL SETUP_LINK BUILD_DIR WORK_DIR OUTDIR
// WORK_DIR is an empty folder: phone.sh runs there (var/phone/) with HOME=WORK_DIR/home.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { start } from './lib.mjs';

const [url, setupLink, buildDir, work, outdir] = process.argv.slice(2);
if (!url || !setupLink || !buildDir || !work || !outdir) {
  console.error('usage: node newcomer.test.mjs URL SETUP_LINK BUILD_DIR WORK_DIR OUTDIR');
  process.exit(2);
}
const repo = new URL('../..', import.meta.url).pathname;
const OWNER = 'nina@example.com';
const PASSWORD = 'four unrelated words here';
const { page, check, shot, finish, newPage } = await start(outdir, { timeout: 15000 });
let phone = null;
let phoneOut = '';

// Starts phone.sh in its own process group and answers its prompt with the command.
function startPhone(command) {
  const home = join(work, 'home');
  mkdirSync(home, { recursive: true });
  phone = spawn(join(repo, 'scripts/phone.sh'), [buildDir], {
    cwd: work, detached: true, env: { ...process.env, HOME: home }, stdio: ['pipe', 'pipe', 'pipe'],
  });
  phone.stdout.on('data', (d) => { phoneOut += d; });
  phone.stderr.on('data', (d) => { phoneOut += d; });
  phone.stdin.write(command + '\n');
}

// Ctrl-C for phone.sh: its trap stops the agent and cleave-hv; bounded, then SIGKILL.
async function stopPhone() {
  if (!phone || phone.exitCode !== null) return;
  const gone = new Promise((r) => phone.once('exit', r));
  try { process.kill(-phone.pid, 'SIGINT'); } catch (e) { return; }
  const t = setTimeout(() => { try { process.kill(-phone.pid, 'SIGKILL'); } catch (e) { /* gone */ } }, 10000);
  await gone;
  clearTimeout(t);
  check(/phone stopped/.test(phoneOut), 'phone.sh stops what it started on Ctrl-C');
}

async function waitFor(what, fn, ms) {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (fn()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}; phone.sh said:\n${phoneOut}`);
}

try {
  // 1. The setup link: the first admin's password.
  await page.goto(setupLink);
  await page.waitForSelector('#setup');
  await page.fill('#setup-email', 'it@example.com');
  await page.fill('#setup-name', 'IT');
  await page.fill('#setup-password', PASSWORD);
  await page.fill('#setup-password2', PASSWORD);
  await shot('01-setup.png');
  await page.click('#setup button[type=submit]');
  await page.waitForSelector('#nav:not([hidden])');
  check(!page.url().includes('setup'), `signed in after setup, the code left the URL (${page.url()})`);

  // 2. An enrollment link for the employee.
  await page.click('#nav a[href="#/enrollment"]');
  await page.fill('#et-owner', OWNER);
  await page.click('#et-create');
  const link = await page.locator('#new-link').getAttribute('href');
  check(link && link.startsWith(url + '/enroll?token='), `the console shows the enrollment link (${link})`);
  await shot('02-enrollment.png');

  // 3. The employee opens it and takes the command.
  const emp = await newPage();
  await emp.goto(link);
  const command = (await emp.locator('#enroll-command').textContent()).trim();
  check(command.startsWith('cleave-agent --state ~/.cleave enroll --server ' + url), 'the page shows the enroll command');
  await shot('03-employee-page.png', emp);
  await emp.close();

  // 4. make phone: cleave-hv and the agent, enrolled with that command.
  startPhone(command);
  await waitFor('the phone to enroll and check in', () => /the phone checks in/.test(phoneOut), 30000);
  check(true, 'phone.sh enrolled the phone with the pasted command');

  // 5. The console finds it; wipe with the typed confirmation.
  await page.click('#nav a[href="#/devices"]');
  await page.fill('#owner', OWNER);
  await page.click('#search button[type=submit]');
  await page.waitForSelector('#devices tbody tr[data-id] a');
  await page.click('#devices tbody tr[data-id] a');
  await page.waitForSelector('#action-wipe');
  await page.click('#action-wipe');
  await page.waitForSelector('#confirm-input');
  check(await page.locator('#confirm-ok').isDisabled(), 'wipe is disabled until the owner is typed');
  await page.fill('#confirm-input', OWNER);
  await page.click('#confirm-ok');
  await page.waitForSelector('#corp-badge[data-phase=done][data-verified=yes]', { timeout: 60000 });
  const badge = await page.locator('#corp-badge').textContent();
  check(badge.includes('receipt verified ✓'), `the badge reaches "receipt verified ✓" (${badge})`);
  await shot('04-wiped.png');

  // 6. The receipt.
  await page.click('#badge-receipt');
  await page.waitForSelector('text=receipt verified');
  await shot('05-receipt.png');
  check(true, 'the receipt view opens from the badge');
  await stopPhone();
  await finish();
} catch (e) {
  await stopPhone();
  await finish(e);
}

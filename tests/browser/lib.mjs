// Shared by the browser scripts: launch Debian's Chromium with playwright-core (exit 77 when
// it cannot run here), record checks, fail on page errors, CSP violations and dialogs, take
// screenshots, and sign in to the console with an email and password.
import { mkdirSync, mkdtempSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const CHROMIUM = process.env.CLEAVE_CHROMIUM || '/usr/bin/chromium';

// Starts the browser; returns {page, context, check, shot, problems, finish, newPage}.
// finish() closes everything, reports and exits with 0 or 1.
export async function start(outdir, opts = {}) {
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
  const check = (cond, what) => {
    console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`);
    if (!cond) failures.push(what);
    return cond;
  };
  const profile = mkdtempSync(join(outdir, 'profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreHTTPSErrors: true, // the server's self-signed certificate (the test made it just now)
    viewport: opts.viewport || { width: 1280, height: 860 },
    acceptDownloads: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const watch = (page) => {
    page.setDefaultTimeout(opts.timeout || 10000);
    page.on('dialog', (d) => { problems.push(`a dialog opened: ${d.type()} ${d.message()}`); d.dismiss(); });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/the server responded with a status of (401|403|409|422|429)/.test(m.text()))
        problems.push(`console error: ${m.text()}`);
    });
    return page;
  };
  const page = watch(context.pages()[0] || await context.newPage());
  const started = Date.now();
  const shot = async (name, p = page) => p.screenshot({ path: join(outdir, name), fullPage: true });
  const newPage = async () => watch(await context.newPage());
  const finish = async (err) => {
    if (err) {
      failures.push(`exception: ${err.message}`);
      console.log(`FAIL exception: ${err.stack}`);
      await shot('zz-failure.png').catch(() => {});
    }
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
    for (const p of problems) {
      console.log(`FAIL ${p}`);
      failures.push(p);
    }
    console.log(`browser test: ${failures.length} failure(s) in ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${outdir}`);
    process.exit(failures.length ? 1 : 0);
  };
  return { page, context, check, shot, problems, finish, newPage };
}

// Signs in on the console's sign-in screen and waits for the device list.
export async function signIn(page, url, email, password, totp) {
  await page.goto(url + '/#/signin');
  await page.waitForSelector('#signin');
  await page.fill('#email', email);
  await page.fill('#password', password);
  if (totp) await page.fill('#totp', totp);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#nav:not([hidden])');
}

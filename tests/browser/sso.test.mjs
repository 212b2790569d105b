// Single sign-on in the console, in Debian's Chromium, through the real OpenID provider
// (LemonLDAP::NG) that tests/integration/test_browser_sso.c started with cleave-server:
//   admin URL OUTDIR    the sign-in screen shows "Sign in with <provider>" (the provider's name
//       has markup, shown as text) above the local form; the button leads to the provider's
//       portal, dwho signs in there and lands in the console as dwho@badwolf.org (admin).
//   norole URL OUTDIR   msmith, whom the provider gives no Cleave role, ends on Cleave's page
//       saying so, with a link back to the sign-in screen, and no session.
// Exit: 0 when every check passed, 1 on a failure, 77 when the browser cannot run here.
import { start } from './lib.mjs';

const [mode, url, outdir] = process.argv.slice(2);
if (!['admin', 'norole'].includes(mode) || !url || !outdir) {
  console.error('usage: node sso.test.mjs admin|norole URL OUTDIR');
  process.exit(2);
}

const t = await start(outdir, { timeout: 20000 });
const { page, check, shot } = t;

// Through the provider's login form as user (password = login, the demo directory's rule).
async function atProvider(user) {
  await page.waitForSelector('#userfield');
  check(!page.url().startsWith(url), `the button led to the provider (${new URL(page.url()).origin})`);
  await shot(`${mode}-02-provider.png`);
  await page.fill('#userfield', user);
  await page.fill('#passwordfield', user);
  await Promise.all([page.waitForURL((u) => u.href.startsWith(url)), page.click('#lform button[type=submit]')]);
}

try {
  await page.goto(url + '/#/signin');
  const link = page.locator('#sso-link');
  await link.waitFor();
  const label = await link.textContent();
  check(label === 'Sign in with <b>LemonLDAP::NG</b>', `the button names the provider as text: ${label}`);
  check(await page.locator('#sso-link b').count() === 0, 'the provider name\'s markup is not markup');
  check(await page.locator('#email').isVisible() && await page.locator('#password').isVisible(),
    'the local sign-in form is still there (break-glass)');
  await link.focus();
  await shot(`${mode}-01-signin.png`);
  if (mode === 'admin') {
    // Keyboard: the link is reachable and Enter follows it.
    await Promise.all([page.waitForURL((u) => !u.href.startsWith(url)), page.keyboard.press('Enter')]);
    await atProvider('dwho');
    await page.waitForFunction(() => /\(admin\)/.test(document.getElementById('who').textContent));
    const who = await page.locator('#who').textContent();
    check(/\(admin\)$/.test(who), `signed in with the mapped role: ${who}`);
    check(!(await page.locator('nav').isHidden()), 'the console\'s navigation is shown');
    await page.waitForSelector('main h1');
    await shot('admin-03-console.png');
    // A reload keeps the session (the cookie the callback set).
    await page.reload();
    await page.waitForFunction(() => /\(admin\)/.test(document.getElementById('who').textContent));
    check(true, 'the session survives a reload');
  } else {
    await Promise.all([page.waitForURL((u) => !u.href.startsWith(url)), link.click()]);
    await atProvider('msmith');
    await page.waitForSelector('#sso-error');
    const why = await page.locator('#sso-error').textContent();
    check(/no Cleave role/.test(why), `Cleave refuses with a reason: ${why}`);
    await shot('norole-03-refused.png');
    await page.click('text=Back to the sign-in page');
    await page.waitForSelector('#signin');
    check(await page.locator('nav').isHidden(), 'no session: back at the sign-in screen');
    await shot('norole-04-back.png');
  }
  await t.finish();
} catch (err) {
  await t.finish(err);
}

// The policies and audit log screens in Chromium, run by tests/integration/test_browser_admin.c
// (which starts the server, three simulated agents and the default policy "baseline").
// Phase "console" (an admin): create a policy, get the API's validation errors beside the form,
// edit a limit, assign the policy to two devices and watch "applied" reach 2 of 2; filter the
// audit log by actor, action, target and time and compare each with the API; page; see the
// chain intact with its checkpoint; export JSON lines and compare them with the API; markup in
// reasons and targets stays text. Phase "tampered" (an auditor, after the test edited audit
// entry SEQ in the database): the policy is read-only and the chain shows broken at SEQ.
// Usage: node policies_audit.test.mjs PHASE URL EMAIL PASSWORD OUTDIR DEVICE1,DEVICE2 SEQ
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, signIn } from './lib.mjs';

const [phase, url, email, password, outdir, deviceList, seqArg] = process.argv.slice(2);
if (!phase || !url || !email || !password || !outdir || !deviceList || !seqArg) {
  console.error('usage: node policies_audit.test.mjs PHASE URL EMAIL PASSWORD OUTDIR DEVICE1,DEVICE2 SEQ');
  process.exit(2);
}
const devices = deviceList.split(',');
const POLICY = 'field-ops';
const { page, check, shot, finish } = await start(outdir);

// GET the API from inside the page, with the console's own session cookie.
const apiGet = (path) => page.evaluate(async (p) => {
  const r = await fetch(p, { credentials: 'same-origin' });
  return r.json();
}, path);

// Every entry the audit API gives for query, following next_cursor.
async function auditAll(query) {
  const out = [];
  let cursor = '';
  for (let i = 0; i < 100; i++) {
    const q = new URLSearchParams(query);
    q.set('limit', '200');
    if (cursor) q.set('cursor', cursor);
    const pg = await apiGet('/api/v1/audit?' + q);
    out.push(...pg.items);
    if (!pg.next_cursor) break;
    cursor = pg.next_cursor;
  }
  return out;
}

const shownSeqs = () => page.locator('#audit tbody tr[data-seq]').evaluateAll((rs) => rs.map((r) => Number(r.dataset.seq)));
const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);

// Waits for the audit screen to show the filter now in the URL, then compares with the API.
// The table says which URL it was rendered for: never compare a stale one.
const current = () => page.waitForFunction(() => document.querySelector('#audit')?.dataset.for === location.hash);

async function compareWithApi(what) {
  await current();
  const query = new URL(page.url()).hash.split('?')[1] || '';
  const api = await auditAll(query);
  const shown = await shownSeqs();
  const want = api.slice(0, 50).map((e) => e.seq);
  check(want.length > 0 && same(shown, want), `audit filter by ${what}: the screen shows the API's ${want.length} entries (${shown.join(' ')})`);
  return api;
}

async function setFilters(values) {
  await page.goto(url + '/#/audit');
  await page.waitForSelector('#audit-filter');
  for (const [k, v] of Object.entries(values)) await page.fill('#f-' + k, v);
  await Promise.all([page.waitForURL(/#\/audit\?/), page.click('#audit-filter button[type=submit]')]);
  await current();
}

async function policyFacts() {
  return page.locator('#policy-facts').innerText();
}

async function consolePhase() {
  await signIn(page, url, email, password);
  const me = await apiGet('/api/v1/session');

  // Create a policy in the console.
  await page.goto(url + '/#/policies');
  await page.waitForSelector('#policies tbody tr[data-name="baseline"]');
  await page.fill('#new-policy', '<b>bad name</b>');
  await page.click('#create-policy button[type=submit]');
  check(await page.isVisible('#new-policy-error'), 'a name with markup is refused before it reaches the API');
  await page.fill('#new-policy', POLICY);
  await page.click('#create-policy button[type=submit]');
  await page.waitForSelector('#policy-form');
  await page.fill('#pf-offline-lock-after-hours', '24');
  await page.fill('#pf-offline-wipe-after-days', '7');
  await page.fill('#pf-max-failed-unlocks', '5');
  await page.fill('#pf-encryption-key-rotation-days', '30');
  await shot('01-policy-new.png');
  await page.click('#policy-save');
  await page.waitForSelector('#policy-facts');
  check(page.url().endsWith('#/policies/' + POLICY), 'the new policy has its own URL');
  check((await policyFacts()).includes('0 of 0 applied'), 'a new policy is applied by 0 of 0 devices');
  const created = await apiGet('/api/v1/policies/' + POLICY);
  check(created.version === 1 && created.content.offline.lock_after_hours === 24 &&
    created.content.max_failed_unlocks === 5 && created.content.encryption.key_rotation_days === 30,
  'the API has the policy as the form set it');

  // The API's validation errors beside the form and the field.
  await page.fill('#pf-offline-lock-after-hours', '48');
  await page.fill('#pf-offline-wipe-after-days', '1');
  await page.click('#policy-save');
  await page.waitForSelector('#policy-error:not([hidden])');
  check((await page.locator('#policy-error').innerText()).includes('wipe limit must come after the lock limit'),
    'the API says why the limits are wrong');
  check(await page.getAttribute('#pf-offline-wipe-after-days', 'aria-invalid') === 'true', 'the wipe field is marked invalid');
  await shot('02-policy-validation.png');
  await page.fill('#pf-offline-wipe-after-days', '7');
  await page.fill('#pf-max-failed-unlocks', '-3');
  await page.click('#policy-save');
  await page.waitForFunction(() => document.querySelector('#pf-max-failed-unlocks').getAttribute('aria-invalid') === 'true');
  check((await page.locator('#policy-error').innerText()).includes('max_failed_unlocks'), 'an out-of-range count is named');
  check((await apiGet('/api/v1/policies/' + POLICY)).version === 1, 'a refused edit changed nothing');

  // Edit a limit: a new version.
  await page.fill('#pf-max-failed-unlocks', '8');
  await page.fill('#pf-offline-lock-after-hours', '12');
  await page.click('#policy-save');
  await page.waitForSelector('#policy-notice');
  check((await page.locator('#policy-notice').innerText()).includes('version 2'), 'the edit saved version 2');
  const v2 = await apiGet('/api/v1/policies/' + POLICY);
  check(v2.version === 2 && v2.content.offline.lock_after_hours === 12 && v2.content.max_failed_unlocks === 8,
    'the API has version 2 with the new limits');

  // Assign to two devices; the simulated agents apply it and the count goes to 2 of 2.
  for (const id of devices) {
    await page.fill('#assign-device', id);
    await page.click('#assign-form button[type=submit]');
    await page.waitForFunction((d) => (document.querySelector('#policy-notice') || {}).textContent?.includes(d), id);
  }
  let facts = '';
  for (let i = 0; i < 40 && !facts.includes('2 of 2 applied'); i++) {
    await page.waitForTimeout(300);
    await page.reload();
    await page.waitForSelector('#policy-facts');
    facts = await policyFacts();
  }
  check(facts.includes('2 of 2 applied'), `after the agents checked in the policy shows 2 of 2 applied (${facts.replace(/\s+/g, ' ')})`);
  const reached = await apiGet('/api/v1/policies/' + POLICY);
  check(reached.devices.assigned === 2 && reached.devices.applied === 2, 'the API counts agree');
  await shot('03-policy-assigned.png');
  await page.click('#policy-history');
  await current();
  const hist = await compareWithApi('the policy\'s history link');
  check(hist.length === 2 && hist.every((e) => e.target === POLICY && e.action === 'policy.put'), 'the history link lists the policy\'s two versions');
  await page.goto(url + '/#/policies');
  await page.waitForSelector(`#policies tbody tr[data-name="${POLICY}"]`);
  check((await page.locator(`#policies tbody tr[data-name="${POLICY}"]`).innerText()).includes('2 of 2 applied'),
    'the list shows the count too');
  check((await page.locator('#policies tbody tr[data-name="baseline"]').innerText()).includes('1 of 1 applied'),
    'the default keeps the third device');
  await shot('04-policies.png');

  // Making it the default moves the third device over too.
  await page.goto(url + '/#/policies/' + POLICY);
  await page.click('#make-default');
  await page.waitForSelector('#policy-notice');
  facts = '';
  for (let i = 0; i < 40 && !facts.includes('3 of 3 applied'); i++) {
    await page.waitForTimeout(300);
    await page.reload();
    await page.waitForSelector('#policy-facts');
    facts = await policyFacts();
  }
  check(facts.includes('3 of 3 applied') && (await apiGet('/api/v1/default-policy')).name === POLICY,
    'as the default it reaches the third device as well');

  // A hostile name typed into the URL stays text, and the API's refusal is shown.
  await page.goto(url + '/#/policies/' + encodeURIComponent('<img src=x onerror=alert(5)>') + '?new=1');
  await page.waitForFunction(() => document.querySelector('h1')?.textContent.startsWith('New policy'));
  check((await page.locator('h1').innerText()).includes('<img src=x onerror=alert(5)>'), 'a hostile policy name shows as text');
  await page.click('#policy-save');
  await page.waitForSelector('#policy-error:not([hidden])');
  check((await page.locator('#policy-error').innerText()).includes('policy names are'), 'the API refuses the name and the form says why');
  check(await page.locator('main img').count() === 0, 'no element was made from the name');
  await shot('04b-policy-hostile-name.png');

  // The audit log: verification with its checkpoint, the whole first page as the API has it.
  await page.goto(url + '/#/audit');
  await page.waitForSelector('#verify');
  check(await page.getAttribute('#verify', 'data-ok') === 'true', 'the chain shows intact');
  check(await page.isVisible('#ckpt-seq'), 'the last signed checkpoint is shown');
  const verify = await apiGet('/api/v1/audit/verify');
  check(verify.ok && String(verify.last_checkpoint.seq) === await page.locator('#ckpt-seq').innerText() &&
    verify.last_checkpoint.head_hash === await page.locator('#ckpt-hash').innerText(), 'the checkpoint shown is the API\'s');
  // Once verified, a reload reads only what follows the anchor; the button reads it all again.
  await page.reload();
  await page.waitForSelector('#verify[data-mode="incremental"]');
  check((await page.locator('#verify-scope').innerText()).startsWith('Incremental verification'), 'the screen says the verification was incremental');
  await page.click('#verify-full');
  await page.waitForSelector('#verify[data-mode="full"]');
  check(await page.getAttribute('#verify', 'data-ok') === 'true' &&
    (await page.locator('#verify-scope').innerText()).startsWith('Full verification'), 'the whole chain verifies on request');
  await shot('05b-audit-verified-full.png');
  const all = await compareWithApi('nothing');
  const detail = await page.locator('#audit td.detail').allInnerTexts();
  check(detail.some((t) => t.includes('<script>alert(2)</script>')), 'a reason with markup shows as text');
  const targets = await page.locator('#audit tbody td:nth-child(5)').allInnerTexts();
  check(targets.some((t) => t.includes('<script>alert(4)<%2Fscript>')), 'a target with markup shows as text');
  check(await page.locator('#audit img, #audit script').count() === 0, 'no element was made from markup');
  await shot('05-audit.png');

  // Filters: actor, action, target, time; each against the API.
  await setFilters({ actor: me.id });
  const mine = await compareWithApi('actor');
  check(mine.every((e) => e.actor === me.id) && mine.some((e) => e.action === 'policy.put'), 'actor: only this admin\'s entries');
  await shot('06-audit-actor.png');
  await setFilters({ action: 'policy.put' });
  const puts = await compareWithApi('action');
  check(puts.length === 3 && puts.every((e) => e.action === 'policy.put'), 'action: the three policy.put entries');
  // By keyboard: type into the field and press Enter.
  await page.goto(url + '/#/audit');
  await page.waitForSelector('#audit-filter');
  await page.focus('#f-target');
  await page.keyboard.type(devices[0]);
  await Promise.all([page.waitForURL(/#\/audit\?/), page.keyboard.press('Enter')]);
  await current();
  const tgt = await compareWithApi('target');
  check(tgt.some((e) => e.action === 'policy.assign') && tgt.every((e) => e.target === devices[0]), 'target: entries about the device');
  // A time window of whole seconds, typed as local times, from the 4th entry to a later one.
  const local = (iso) => page.evaluate((v) => {
    const d = new Date(v);
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }, iso);
  const from = all[3].at, to = new Date(new Date(all[all.length - 4].at).getTime() + 1000).toISOString();
  await setFilters({ since: await local(from), until: await local(to), action: 'policy.put' });
  const win = await compareWithApi('time and action');
  const lo = Math.floor(new Date(from).getTime() / 1000) * 1000, hi = Math.floor(new Date(to).getTime() / 1000) * 1000;
  check(win.every((e) => new Date(e.at).getTime() >= lo && new Date(e.at).getTime() < hi && e.action === 'policy.put'),
    'time: every entry lies in the window');
  await shot('07-audit-time.png');
  await page.reload();
  await current();
  check(same(await shownSeqs(), win.slice(0, 50).map((e) => e.seq)) && (await page.inputValue('#f-action')) === 'policy.put',
    'a reload keeps the filters');

  // Paging by cursor, and back.
  await page.goto(url + '/#/audit?limit=5');
  await page.waitForFunction(() => document.querySelectorAll('#audit tbody tr[data-seq]').length === 5);
  const p1 = await shownSeqs();
  await page.click('#next');
  await page.waitForFunction((s) => {
    const r = document.querySelector('#audit tbody tr[data-seq]');
    return r && r.dataset.seq !== String(s);
  }, p1[0]);
  const p2 = await shownSeqs();
  check(same(p1.concat(p2), all.slice(0, 10).map((e) => e.seq)), 'the second page continues the first');
  await page.goBack();
  await page.waitForFunction((s) => document.querySelector('#audit tbody tr[data-seq]')?.dataset.seq === String(s), p1[0]);
  check(true, 'back returns to the first page');

  // Export as JSON lines: a download whose lines are the API's entries.
  await page.goto(url + '/#/audit');
  await page.waitForSelector('#export');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
  const file = join(outdir, 'audit-export.jsonl');
  await download.saveAs(file);
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l);
  let parsed = [];
  try {
    parsed = lines.map((l) => JSON.parse(l));
  } catch (e) {
    check(false, 'every exported line parses: ' + e.message);
  }
  const now = await auditAll('');
  const byseq = new Map(now.map((e) => [e.seq, e]));
  check(download.suggestedFilename().endsWith('.jsonl'), 'the download is a .jsonl file');
  check(parsed.length >= all.length && parsed.every((e, i) => e.seq === i + 1 && byseq.get(e.seq) &&
    byseq.get(e.seq).hash === e.hash && byseq.get(e.seq).detail === e.detail && typeof e.prev_hash === 'string'),
  `the ${parsed.length} exported lines are the API's entries in order`);
  await page.waitForSelector('#export-status:has-text("Exported")');
  await shot('08-audit-exported.png');
}

async function tamperedPhase() {
  await signIn(page, url, email, password);
  // An auditor reads the policy but cannot change or assign it.
  await page.goto(url + '/#/policies/' + POLICY);
  await page.waitForSelector('#policy-form');
  check(await page.locator('#policy-save, #assign-form, #make-default').count() === 0, 'an auditor gets no edit, assign or default control');
  check(await page.isDisabled('#pf-offline-lock-after-hours'), 'the limits are read-only for an auditor');
  await shot('01-policy-auditor.png');
  await page.goto(url + '/#/policies');
  await page.waitForSelector('#policies');
  check(await page.locator('#create-policy').count() === 0, 'an auditor gets no create form');

  await page.goto(url + '/#/audit');
  await page.waitForSelector('#verify');
  check(await page.getAttribute('#verify', 'data-ok') === 'false', 'the edited chain shows broken');
  check(await page.locator('#bad-seq').innerText() === seqArg, `the break is named at entry ${seqArg}`);
  const v = await apiGet('/api/v1/audit/verify');
  check(!v.ok && String(v.first_bad_seq) === seqArg && (await page.locator('#verify-problem').innerText()) === v.problem,
    'the screen says what the API says');
  const row = page.locator(`#audit tbody tr[data-seq="${seqArg}"] td.detail`);
  check((await row.innerText()) === 'nothing to see', 'the edited entry is listed as it now reads');
  await shot('02-audit-broken.png');
}

try {
  if (phase === 'console') await consolePhase();
  else if (phase === 'tampered') await tamperedPhase();
  else check(false, 'unknown phase ' + phase);
  await finish();
} catch (err) {
  await finish(err);
}

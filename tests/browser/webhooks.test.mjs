// The Webhooks screen in Chromium, against the real cleave-server that
// tests/integration/test_browser_webhooks.c started (webhook delays 1000 times faster) with one
// enrolled device and one subscription whose receiver is down and whose description is markup.
// This script runs its own receiver on 127.0.0.1 (node:http) that checks each Standard
// Webhooks signature with node:crypto. In the console: the list (the failing subscription, its
// description as text), a subscription created in the form (a bad URL refused first), its
// secret shown once; a lock queued through the API reaches the receiver signed and shows in
// the delivery log; Redeliver sends the same webhook-id again; Disable, Enable; Rotate secret
// (typed confirmation) shows a new secret that signs what follows; Delete (typed) goes back to
// the list; helpdesk is told only admins manage webhooks.
// Usage: node webhooks.test.mjs URL EMAIL PASSWORD OUTDIR DEVICE_ID HOSTILE HELPDESK_EMAIL
// Exit: 0 when every check passed, 1 on a failure, 77 when the browser cannot run here.
import { createServer } from 'node:http';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { start, signIn } from './lib.mjs';

const [url, email, password, outdir, device, hostile, helpdesk] = process.argv.slice(2);
if (!helpdesk) {
  console.error('usage: node webhooks.test.mjs URL EMAIL PASSWORD OUTDIR DEVICE_ID HOSTILE HELPDESK_EMAIL');
  process.exit(2);
}

// The receiver: every request kept with whether its signature verifies under `secret`.
let secret = '';
const got = [];
const verify = (id, ts, body, sigs) => {
  if (!secret.startsWith('whsec_')) return false;
  const mac = createHmac('sha256', Buffer.from(secret.slice(6), 'base64'))
    .update(`${id}.${ts}.`).update(body).digest();
  return (sigs || '').split(' ').some((s) => {
    const b = Buffer.from(s.replace(/^v1,/, ''), 'base64');
    return s.startsWith('v1,') && b.length === mac.length && timingSafeEqual(b, mac);
  });
};
const rx = createServer((req, res) => {
  const parts = [];
  req.on('data', (c) => parts.push(c));
  req.on('end', () => {
    const body = Buffer.concat(parts);
    const h = req.headers;
    got.push({ id: h['webhook-id'], ok: verify(h['webhook-id'], h['webhook-timestamp'], body, h['webhook-signature']),
      type: JSON.parse(body.toString()).type });
    res.writeHead(204).end();
  });
});
await new Promise((r) => rx.listen(0, '127.0.0.1', r));
const hookUrl = `http://127.0.0.1:${rx.address().port}/hook`;

const { page, check, shot, finish, newPage } = await start(outdir, { timeout: 15000 });
const apiGet = async (path) => (await page.request.get(url + path)).json();
const apiPost = async (path, data) => {
  const me = await apiGet('/api/v1/session');
  return page.request.post(url + path, { data, headers: { 'X-CSRF-Token': me.csrf_token } });
};
const waitFor = async (cond, what, ms = 15000) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check(false, what);
};

try {
  await signIn(page, url, email, password);
  await page.click('nav a[href="#/webhooks"]');
  await page.waitForSelector('#webhooks tbody tr[data-id]');
  const desc = page.locator('#webhooks .desc').first();
  check(await desc.textContent() === hostile && await page.locator('#webhooks .desc img').count() === 0,
    'the hostile description shows as text');
  await waitFor(async () => (await page.reload(), await page.waitForSelector('#webhooks tbody tr[data-id]'),
    (await page.textContent('#webhooks td.state')).includes('failing')), 'the dead receiver shows failing');
  await shot('01-list.png');

  // A bad URL is refused with the API's reason; then the real one.
  await page.fill('#wh-url', 'http://example.com/hook');
  await page.check('#wh-ev-command-queued');
  await page.click('#wh-create');
  await page.waitForSelector('#wh-error:not([hidden])');
  check((await page.textContent('#wh-error')).includes('url'), 'a plain-http URL elsewhere is refused, naming url');
  await page.fill('#wh-url', hookUrl);
  await page.fill('#wh-desc', 'ticketing');
  await page.check('#wh-ev-command-queued');
  await page.check('#wh-ev-wipe-verified');
  await page.click('#wh-create');
  await page.waitForSelector('#new-secret');
  secret = (await page.textContent('#secret-value')).trim();
  check(/^whsec_[A-Za-z0-9+/]{43}=$/.test(secret), 'the secret is shown once, whsec_ + base64');
  await shot('02-created.png');
  const list = await apiGet('/api/v1/webhooks');
  const mine = list.items.find((w) => w.url === hookUrl);
  check(mine && !('secret' in mine), 'the list never carries the secret');
  await page.reload();
  await page.waitForSelector('#webhooks tbody tr[data-id]');
  check(await page.locator('#new-secret').count() === 0, 'after a reload the secret is gone');

  // An event: a lock queued through the API reaches the receiver, signed.
  const r = await apiPost(`/api/v1/devices/${encodeURIComponent(device)}/commands`, { type: 'lock', reason: 'browser test' });
  check(r.status() === 202, 'a lock queued');
  await waitFor(() => got.length >= 1, 'the receiver got the event');
  check(got[0].ok && got[0].type === 'command.queued', 'command.queued arrived with a valid signature');
  await page.click(`#webhooks a[href="#/webhooks/${mine.id}"]`);
  await page.waitForSelector('#deliveries');
  // The receiver may answer before the server has recorded the attempt: reload until it shows.
  await waitFor(async () => (await page.locator('#deliveries tbody tr[data-id]').count() > 0) ||
    (await page.reload(), await page.waitForSelector('#deliveries'), false), 'the attempt is in the log');
  check((await page.textContent('#deliveries td.outcome')).includes('delivered'), 'the log shows the delivery');
  check((await page.textContent('#deliveries td.code')) === '204', 'with the receiver\'s status');
  await shot('03-log.png');

  // Redeliver: the same webhook-id comes again.
  await page.click('#deliveries button.redeliver');
  await page.waitForSelector('#wh-note:not([hidden])');
  await waitFor(() => got.length >= 2, 'the redelivery came');
  check(got[1].id === got[0].id && got[1].ok, 'the redelivery has the same webhook-id and a valid signature');
  await waitFor(async () => (await page.reload(), await page.waitForSelector('#deliveries tbody tr[data-id]'),
    await page.locator('#deliveries tbody tr[data-id]').count() === 2), 'the log shows both attempts');
  check((await page.locator('#deliveries tbody tr').first().textContent()).includes('manual'), 'the newest is the manual one');

  // Disable and enable.
  await page.click('#wh-toggle');
  await page.waitForFunction(() => document.querySelector('#wh-toggle').textContent === 'Enable');
  check((await apiGet(`/api/v1/webhooks/${mine.id}`)).enabled === false, 'disabled through the API');
  await shot('04-disabled.png');
  await page.click('#wh-toggle');
  await page.waitForFunction(() => document.querySelector('#wh-toggle').textContent === 'Disable');
  check((await apiGet(`/api/v1/webhooks/${mine.id}`)).enabled === true, 'enabled again');

  // Rotate: typed confirmation, a new secret that signs what follows.
  await page.click('#wh-rotate');
  await page.waitForSelector('#confirm[open]');
  check(await page.isDisabled('#confirm-ok'), 'rotate waits for the typed word');
  await page.fill('#confirm-input', 'rotate');
  await page.click('#confirm-ok');
  await page.waitForSelector('#new-secret');
  const old = secret;
  secret = (await page.textContent('#secret-value')).trim();
  check(secret !== old && secret.startsWith('whsec_'), 'a new secret is shown');
  await shot('05-rotated.png');
  await apiPost(`/api/v1/devices/${encodeURIComponent(device)}/commands`, { type: 'unlock', reason: 'browser test' });
  await waitFor(() => got.length >= 3, 'the next event came');
  check(got[2].ok, 'signed with the new secret');

  // Delete: typed confirmation, back to the list.
  await page.click('#wh-delete');
  await page.waitForSelector('#confirm[open]');
  await page.fill('#confirm-input', 'delete');
  await page.click('#confirm-ok');
  await page.waitForFunction(() => location.hash === '#/webhooks');
  await page.waitForSelector('#webhooks tbody tr');
  check(await page.locator(`#webhooks tr[data-id="${mine.id}"]`).count() === 0, 'deleted, gone from the list');
  check((await page.request.get(`${url}/api/v1/webhooks/${mine.id}`)).status() === 404, 'the API says 404');

  // Helpdesk: not for them.
  const p2 = await newPage();
  await p2.context().clearCookies();
  await signIn(p2, url, helpdesk, password);
  await p2.goto(url + '/#/webhooks');
  await p2.waitForSelector('main p.muted');
  check((await p2.textContent('main')).includes('Only admins'), 'helpdesk is told only admins manage webhooks');
  await shot('06-helpdesk.png', p2);
  await finish();
} catch (err) {
  await finish(err);
} finally {
  rx.close();
}

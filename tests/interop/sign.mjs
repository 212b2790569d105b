// An independent RFC 9421 signer for tests/integration/test_httpsig_interop.c: signs one device
// request with the npm package http-message-signatures (its own serialization, label, parameter
// order and expires) and sends it to a cleave-server over HTTPS, trusting only the test CA.
// Prints one line per request sent, "<HTTP status> <response body>", then the two signature
// fields as "# Name: value" lines. Nothing here is Cleave code:
// the point is that the signer is someone else's.
//
// usage: node sign.mjs --url URL --ca FILE --key PEM --keyid ID --nonce N [--label NAME]
//        [--fields a,b,...] [--created-offset S] [--expires-offset S] [--wrong-key]
//        [--gateway-signature] [--repeat N] [--body JSON]
import { createPrivateKey, createHash, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import process from 'node:process';

let lib;
try {
  lib = await import('http-message-signatures');
} catch (e) {
  console.error(`skipped: npm package http-message-signatures not installed (${e.message})`);
  process.exit(4);
}
const { httpbis, createSigner } = lib.default ?? lib;

function parseArgs(argv) {
  const o = {
    label: 'cleave', fields: 'content-digest,@method,@path,@query', createdOffset: 0,
    expiresOffset: 300, repeat: 1, body: '{"wait":0}',
  };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (name === 'wrongKey' || name === 'gatewaySignature') o[name] = true;
    else o[name] = argv[++i];
  }
  for (const k of ['url', 'ca', 'key', 'keyid', 'nonce'])
    if (o[k] === undefined) throw new Error(`--${k} is required`);
  return o;
}

function send(url, ca, headers, body) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'POST', ca, headers, timeout: 15000 }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve(`${res.statusCode} ${data.replace(/\s+/g, ' ')}`));
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const key = o.wrongKey ? generateKeyPairSync('ed25519').privateKey
    : createPrivateKey(readFileSync(o.key));
  const now = Date.now();
  const digest = createHash('sha256').update(o.body).digest('base64');
  let message = {
    method: 'POST',
    url: o.url,
    headers: { 'content-type': 'application/json', 'content-digest': `sha-256=:${digest}:` },
  };
  if (o.gatewaySignature) {
    // Another party's signature first (an HMAC over fewer components), as a gateway might add.
    message = await httpbis.signMessage({
      key: createSigner('gateway-secret', 'hmac-sha256', 'gw'), name: 'gw',
      fields: ['@method', '@path'],
    }, message);
  }
  const signed = await httpbis.signMessage({
    key: createSigner(key, 'ed25519', o.keyid),
    name: o.label,
    fields: o.fields.split(',').filter((f) => f !== ''),
    params: ['expires', 'nonce', 'alg', 'keyid', 'created', 'tag'],
    paramValues: {
      created: new Date(now + Number(o.createdOffset) * 1000),
      expires: new Date(now + Number(o.expiresOffset) * 1000),
      nonce: String(o.nonce),
      tag: 'cleave-interop',
    },
  }, message);
  const ca = readFileSync(o.ca);
  for (let i = 0; i < Number(o.repeat); i++)
    console.log(await send(o.url, ca, signed.headers, o.body));
  console.log(`# Signature-Input: ${signed.headers['Signature-Input']}`);
  console.log(`# Signature: ${signed.headers.Signature}`);
}

const timer = setTimeout(() => { console.error('sign.mjs: gave up after 30 s'); process.exit(3); },
  30000);
main().then(() => clearTimeout(timer), (e) => {
  console.error(`sign.mjs: ${e.stack ?? e}`);
  process.exit(2);
});

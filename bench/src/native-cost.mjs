/**
 * Issue 4's figure: a request's client-side cost with @nomyo/native protecting the secrets, next to
 * the pure-JS fallback (zeroing only), same setup as client-cost.mjs, interleaved.
 */
import { SecureCompletionClient, getMemoryProtection } from '@nomyo/core';
import { sealPackage, generateRsaKeyPair, derToPem } from '@nomyo/core/protocol';
import { answer, request, SIZES } from './payloads.mjs';
import { compare, fmt, ratio } from './stats.mjs';

/** What the JS fallback does: zeroing only (the same behaviour as core's JsSecureMemory). */
const zeroingOnly = {
  kind: 'js',
  lock: () => false,
  unlock: (v) => v.fill(0),
  zero: (v) => v.fill(0),
  alloc: (n) => new Uint8Array(n),
  free: (v) => v.fill(0),
  info: () => ({ kind: 'js', locking: false, dumpExclusion: false, reason: 'bench: zeroing only' }),
};

export async function nativeCost({ rounds }) {
  const protection = await getMemoryProtection();
  if (protection.kind !== 'native') return { skipped: protection.reason };
  const server = await generateRsaKeyPair(4096, true);
  const serverPem = derToPem(new Uint8Array(await crypto.subtle.exportKey('spki', server.publicKey)), 'PUBLIC KEY');
  // One pre-sealed answer per client key, picked by the X-Public-Key the client sends.
  const answers = new Map();
  const fetch = async (url, init) => {
    if (init?.body === undefined) return new Response(serverPem);
    await new Request(url, { method: 'POST', body: init.body }).arrayBuffer();
    return new Response(answers.get(init.headers['X-Public-Key']));
  };
  const native = new SecureCompletionClient({ routerUrl: 'https://router.invalid', fetch, secureMemory: 'require-native' });
  const js = new SecureCompletionClient({ routerUrl: 'https://router.invalid', fetch, secureMemory: zeroingOnly });
  const clientKeys = [await native.keyPair(), await js.keyPair()];
  const rows = [];
  for (const [label, bytes] of SIZES) {
    const plaintext = new TextEncoder().encode(JSON.stringify(answer(bytes)));
    for (const keys of clientKeys) answers.set(keys.publicKeyHeader, JSON.stringify(await sealPackage(plaintext, keys.publicKey)));
    const payload = request(bytes);
    const r = await compare(
      { js: () => js.sendSecureRequest(payload), native: () => native.sendSecureRequest(payload) },
      { rounds: bytes > 1e6 ? Math.max(5, rounds >> 2) : rounds },
    );
    rows.push({ label, ...r });
  }
  await native.dispose();
  await js.dispose();
  return { protection, rows };
}

export function printNativeCost(result) {
  console.log('\nClient-side cost per request with @nomyo/native (locked, dump-excluded secrets) vs zeroing only');
  if (result.skipped) return console.log(`skipped: ${result.skipped}`);
  console.log(`native: ${result.protection.reason}`);
  console.log('size        native       JS   native/JS');
  for (const r of result.rows) console.log(`${r.label.padEnd(9)} ${fmt(r.native)} ${fmt(r.js)}   ${ratio(r.native, r.js)}`);
}

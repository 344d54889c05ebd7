/**
 * Part 2: the whole create() against the reference server on loopback, minus the server's own
 * processing time (X-Processing-Time-Ms), so fetch, JSON, base64 and copies all count. Beside it,
 * the same exchange written with bare Web Crypto + fetch (see bare.mjs), measured the same way.
 * The client sends with the runtime's own fetch, as it does by default: a fetch option would cost
 * a copy of every body (core's transport/http.ts sendInit), which only its users pay.
 */
import { SecureChatCompletion, createSecureFetch } from '@nomyo/core';
import { parseServerKey, generateRsaKeyPair, derToPem } from '@nomyo/core/protocol';
import { bareOpen, bareSeal } from './bare.mjs';
import { request, SIZES } from './payloads.mjs';
import { compare, fmt, ratio } from './stats.mjs';
import { startServerProcess } from './server-process.mjs';
import { lastServerMs, watchServerTime } from './server-time.mjs';

export async function endToEnd({ rounds }) {
  const server = await startServerProcess();
  const unwatch = watchServerTime();
  // v1, like the bare client beside it (and the client-key variants below only matter to v1); v2 vs v1 is protocol-v2.mjs.
  const client = new SecureChatCompletion({ baseUrl: server.url, allowHttp: true, maxRetries: 0, protocol: 1 });
  const { primes } = await client.client.keyPair();

  // The bare client: fetches the router key once too, and keeps its own RSA-4096 pair.
  const bareKeys = await generateRsaKeyPair(4096, false);
  const barePem = encodeURIComponent(derToPem(new Uint8Array(await crypto.subtle.exportKey('spki', bareKeys.publicKey)), 'PUBLIC KEY'));
  const serverKey = await parseServerKey(await (await fetch(`${server.url}/pki/public_key`)).text());
  const bare = async (payload) => {
    const res = await fetch(`${server.url}/v1/chat/secure_completion`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream', 'X-Payload-ID': crypto.randomUUID(), 'X-Public-Key': barePem },
      body: await bareSeal(payload, serverKey.key),
    });
    return bareOpen(await res.text(), bareKeys.privateKey);
  };

  const own = (fn) => async () => {
    const t0 = performance.now();
    await fn();
    return performance.now() - t0 - lastServerMs();
  };
  const rows = Object.assign([], { primes });
  // The plain text at every size; the letter (escapes, multi-byte letters) where it costs most; code (escapes every few bytes) and Chinese once.
  const cases = [
    ...SIZES.map(([label, bytes]) => [label, bytes, 'plain']),
    ...SIZES.filter(([, bytes]) => bytes > 1e6).map(([label, bytes]) => [`${label} letter`, bytes, 'letter']),
    [`${SIZES[2][0]} code`, SIZES[2][1], 'code'],
    [`${SIZES[2][0]} cjk`, SIZES[2][1], 'cjk'],
  ];
  for (const [label, bytes, kind] of cases) {
    const payload = request(bytes, kind);
    const r = await compare(
      { ours: own(() => client.create(payload)), bare: own(() => bare(payload)) },
      { rounds: bytes > 1e6 ? Math.max(9, rounds >> 1) : rounds },
    );
    rows.push({ label, ...r });
  }
  // The floor at 1 KiB is the client's RSA private-key operation: show it with other client keys too.
  const payload = request(1024);
  const variants = [['two-prime RSA-4096 (multiPrimeKeys: false)', { multiPrimeKeys: false }], ['RSA-2048', { keySize: 2048 }]];
  const others = variants.map(([, options]) => new SecureChatCompletion({ baseUrl: server.url, allowHttp: true, maxRetries: 0, protocol: 1, ...options }));
  await Promise.all(others.map((c) => c.client.keyPair()));
  const r = await compare(Object.fromEntries(others.map((c, i) => [i, own(() => c.create(payload))])), { rounds });
  variants.forEach(([label], i) => rows.push({ label: `1 KiB, client key ${label}`, ours: r[i] }));
  await Promise.all(others.map((c) => c.dispose()));
  // What a fetch option costs at 10 MiB (it gets a copy of the body), beside the default in the same rounds.
  const large = request(SIZES.at(-1)[1]);
  const withOption = new SecureChatCompletion({ baseUrl: server.url, allowHttp: true, maxRetries: 0, protocol: 1, fetch: (url, init) => fetch(url, init) });
  await withOption.client.keyPair();
  const o = await compare({ option: own(() => withOption.create(large)), own: own(() => client.create(large)) }, { rounds: Math.max(9, rounds >> 1) });
  rows.push({ label: `${SIZES.at(-1)[0]} through a fetch option`, ours: o.option, against: o.own });
  await withOption.dispose();
  // The SDKs' path (createSecureFetch): the answer as JSON, or replayed as SSE for `stream: true`, read to its end.
  const sdkFetch = createSecureFetch({ client: client.client });
  const viaFetch = (stream) => own(async () => {
    const res = await sdkFetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ ...large5, stream }) });
    await (stream ? res.arrayBuffer() : res.json());
  });
  const large5 = request(SIZES[2][1]);
  const f = await compare({ stream: viaFetch(true), json: viaFetch(false) }, { rounds: Math.max(9, rounds >> 1) });
  rows.push({ label: `${SIZES[2][0]} through createSecureFetch, stream: true (SSE replay) vs false`, ours: f.stream, against: f.json, vs: 'stream: false' });
  await client.dispose();
  await server.close();
  unwatch();
  return rows;
}

export function printEndToEnd(rows) {
  console.log('\nWhole create() on loopback, minus the server\'s own processing time (protocol v1, as the bare client; the runtime\'s own fetch, the default)');
  console.log(`client key: RSA-4096, ${rows.primes} primes (the default); the bare client's is Web Crypto's own (two primes)`);
  console.log('text: plain ASCII prose; "letter": lines, quotes and non-ASCII letters; "code": an escape every few bytes; "cjk": Chinese (payloads.mjs)');
  console.log('size              @nomyo   bare WebCrypto+fetch   @nomyo/bare');
  for (const r of rows) {
    if (r.against !== undefined) console.log(`${r.label}: ${fmt(r.ours).trim()}, ${ratio(r.ours, r.against).trim()} ${r.vs ?? "the runtime's own fetch"} (${fmt(r.against).trim()})`);
    else if (r.bare === undefined) console.log(`${r.label}: ${fmt(r.ours).trim()}`);
    else console.log(`${r.label.padEnd(13)} ${fmt(r.ours)}        ${fmt(r.bare)}         ${ratio(r.ours, r.bare)}`);
  }
  console.log('reference on this kind of machine: official Python client ~5.8 ms (1 KiB), ~800 ms (5 MiB); plain Web Crypto + fetch client ~8.3 ms, ~330 ms');
}

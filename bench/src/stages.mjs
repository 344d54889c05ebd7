/**
 * Where a large request's time and memory go: the client's path split into its stages, each with
 * its median time and the bytes it newly allocates (JS heap plus external memory: ArrayBuffers and
 * external strings), measured after a forced collection, so a stage's count is what it allocated
 * and still held when it ended. Against the
 * reference server in its own process, which echoes the prompt back (so the answer is as large).
 *
 * The stages call the same internal functions, in the same order, as SecureCompletionClient.
 * The client changes: so must this list. Needs `node --expose-gc` (the bench script passes it).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MAX_ANSWER_DEPTH, parseServerKey } from '@nomyo/core/protocol';
import { PROCESSING_TIME_HEADER } from '@nomyo/server';
import { request } from './payloads.mjs';
import { median } from './stats.mjs';
import { startServerProcess } from './server-process.mjs';

const coreDir = dirname(createRequire(import.meta.url).resolve('@nomyo/core/package.json'));
const internal = (path) => import(pathToFileURL(join(coreDir, 'dist', path)).href);

export const STAGE_SIZES = [
  ['100 KiB', 100 * 1024],
  ['5 MiB', 5 * 1024 * 1024],
  ['10 MiB', 10 * 1024 * 1024 - 256],
];

/** Runs the stages of one request; `probe(name, fn)` wraps each stage and returns its value. */
async function oneRequest(ctx, payload, probe) {
  const { pkg, b64, aes, rsa, completion, depth, keys } = ctx;
  const json = await probe('serialize', () => JSON.stringify(payload));
  const bytes = await probe('encode', () => new TextEncoder().encode(json));
  const sealed = await probe('encrypt', async () => {
    const aesKey = await aes.generateAesKey();
    const [s, wrapped] = await Promise.all([aes.aesGcmSeal(aesKey, bytes), rsa.wrapAesKey(aesKey, ctx.serverKey)]);
    return { ...s, wrapped: new Uint8Array(wrapped) };
  });
  const requestPackage = await probe('base64', () => {
    const ctLength = sealed.sealed.length - 16;
    return {
      version: '1.0',
      algorithm: 'hybrid-aes256-rsa4096',
      encrypted_payload: {
        ciphertext: b64.encodeBase64(sealed.sealed.subarray(0, ctLength)),
        nonce: b64.encodeBase64(sealed.nonce),
        tag: b64.encodeBase64(sealed.sealed.subarray(ctLength)),
      },
      encrypted_aes_key: b64.encodeBase64(sealed.wrapped),
      key_algorithm: 'RSA-OAEP-SHA256',
      payload_algorithm: 'AES-256-GCM',
    };
  });
  const body = await probe('body', () => pkg.serializePackage(requestPackage));
  bytes.fill(0);
  let serverMs = 0;
  const response = await probe('fetch send', async () => {
    const res = await fetch(`${ctx.url}/v1/chat/secure_completion`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream', 'X-Payload-ID': crypto.randomUUID(), 'X-Public-Key': keys.publicKeyHeader },
      body,
    });
    serverMs = Number(res.headers.get(PROCESSING_TIME_HEADER) ?? 0);
    return res;
  }, () => serverMs);
  const text = await probe('response read', () => response.text());
  const parsed = await probe('parse', () => pkg.parsePackage(text));
  const wire = await probe('base64 decode', () => {
    const ep = parsed.encrypted_payload;
    const ctLength = b64.decodedLength(ep.ciphertext);
    const all = new Uint8Array(ctLength + 16);
    b64.decodeBase64Into(ep.ciphertext, all);
    all.set(b64.decodeBase64(ep.tag), ctLength);
    return { all, nonce: b64.decodeBase64(ep.nonce), wrapped: b64.decodeBase64(parsed.encrypted_aes_key) };
  });
  const plain = await probe('decrypt', async () => aes.aesGcmOpen(await rsa.unwrapAesKey(wire.wrapped, keys.privateKey), wire.nonce, wire.all));
  const answerText = await probe('decode', () => new TextDecoder('utf-8', { fatal: true }).decode(plain));
  plain.fill(0);
  await probe('depth scan', () => depth.jsonNestingExceeds(answerText, MAX_ANSWER_DEPTH));
  const value = await probe('JSON.parse', () => JSON.parse(answerText));
  await probe('schema check', () => completion.checkChatCompletion(value));
}

export async function stages({ rounds }) {
  if (typeof globalThis.gc !== 'function') throw new Error('the stage breakdown needs node --expose-gc');
  // The stages are those of a v1 request (a v2 router answers v1 packages with v1).
  const server = await startServerProcess();
  const [pkg, b64, aes, rsa, completion, depth] = await Promise.all(
    ['protocol/package.js', 'protocol/base64.js', 'crypto/aes-gcm.js', 'crypto/rsa.js', 'protocol/completion.js', 'protocol/json-depth.js'].map(internal),
  );
  const { SecureCompletionClient } = await import('@nomyo/core');
  const client = new SecureCompletionClient({ routerUrl: server.url, allowHttp: true });
  const keys = await client.keyPair();
  const serverKey = (await parseServerKey(await (await fetch(`${server.url}/pki/public_key`)).text())).key;
  const ctx = { url: server.url, serverKey, keys, pkg, b64, aes, rsa, completion, depth };

  const rows = [];
  for (const [label, size] of STAGE_SIZES) {
    const payload = request(size);
    const n = size > 1e6 ? Math.max(5, rounds >> 2) : rounds;
    const times = new Map();
    // Timing rounds: no forced collections (a running application does not get them either).
    for (let i = 0; i < n + 2; i++) {
      await oneRequest(ctx, payload, async (name, fn, minus) => {
        const t0 = performance.now();
        const v = await fn();
        const ms = performance.now() - t0 - (minus ? minus() : 0);
        if (i >= 2) (times.get(name) ?? times.set(name, []).get(name)).push(ms);
        return v;
      });
    }
    // Allocation rounds: a full collection before each stage, then what the stage left allocated.
    // A collection inside a stage can hide some of it: the largest of three rounds is kept.
    const allocated = new Map();
    for (let i = 0; i < 3; i++) {
      await oneRequest(ctx, payload, async (name, fn) => {
        globalThis.gc();
        const m0 = process.memoryUsage();
        const v = await fn();
        const m1 = process.memoryUsage();
        allocated.set(name, Math.max(allocated.get(name) ?? 0, m1.heapUsed - m0.heapUsed + m1.external - m0.external));
        return v;
      });
    }
    rows.push({ label, size, stages: [...times].map(([name, ms]) => ({ name, ms: median(ms), bytes: allocated.get(name) ?? 0 })) });
  }
  await client.dispose();
  await server.close();
  return rows;
}

const mib = (b) => (b / 1048576).toFixed(b >= 1048576 * 10 ? 0 : 1).padStart(6);

export function printStages(rows) {
  console.log('\nStage breakdown of one request (client side; fetch send is minus the server\'s own time)');
  console.log('stage           ' + rows.map((r) => `${r.label.padStart(9)} ms   MiB new`).join('   '));
  const names = rows[0].stages.map((s) => s.name);
  for (const name of names) {
    const cells = rows.map((r) => {
      const s = r.stages.find((x) => x.name === name);
      return `${s.ms.toFixed(s.ms >= 100 ? 0 : 2).padStart(9)}    ${mib(s.bytes)}`;
    });
    console.log(name.padEnd(16) + cells.join('    '));
  }
  const totals = rows.map((r) => {
    const ms = r.stages.reduce((a, s) => a + s.ms, 0);
    const bytes = r.stages.reduce((a, s) => a + s.bytes, 0);
    return `${ms.toFixed(ms >= 100 ? 0 : 2).padStart(9)}    ${mib(bytes)}`;
  });
  console.log('total'.padEnd(16) + totals.join('    '));
  console.log('allocated bytes / payload: ' + rows.map((r) => `${r.label} ${(r.stages.reduce((a, s) => a + s.bytes, 0) / r.size).toFixed(1)}x`).join(', '));
}

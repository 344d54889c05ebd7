/**
 * Protocol v2 against v1, client side, against the reference server in its own process (which
 * speaks both): wall time minus the server's own processing time (X-Processing-Time-Ms of every
 * exchange), so fetch, JSON, base64, Web Crypto and copies all count, and the router's RSA does not.
 *
 * 1. One 1 KiB request, v2 and v1 clients interleaved (both warm, default RSA-4096 client key for v1).
 * 2. The first request of a new client: v2 (no key pair to make) and v1 (which makes one first),
 *    in this warm process and in fresh processes (the addon load and first-call JIT included).
 * 3. Where v2's remaining time goes: its steps timed alone, in the same process.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SecureChatCompletion } from '@nomyo/core';
import {
  HEADERS,
  PACKAGE_CONTENT_TYPE,
  PATHS,
  deriveAnswerKey,
  openAnswerV2,
  parseJsonPackage,
  parseServerKey,
  sealAnswerV2,
  sealRequestV2,
  serializePackage,
} from '@nomyo/core/protocol';
import { PROCESSING_TIME_HEADER } from '@nomyo/server';
import { answer, request } from './payloads.mjs';
import { compare, fmt, median, ratio } from './stats.mjs';
import { startServerProcess } from './server-process.mjs';

const encoder = new TextEncoder();
const FRESH_PROCESSES = 5;

/** A fetch that adds up the server's processing time of every exchange since the last reset. */
function timedFetch() {
  const timed = async (url, init) => {
    const res = await fetch(url, init);
    timed.serverMs += Number(res.headers.get(PROCESSING_TIME_HEADER) ?? 0);
    return res;
  };
  timed.serverMs = 0;
  return timed;
}

/** Runs `fn` and returns its wall time minus the server time it caused. */
async function own(fetch, fn) {
  fetch.serverMs = 0;
  const t0 = performance.now();
  await fn();
  return performance.now() - t0 - fetch.serverMs;
}

export async function protocolV2({ rounds }) {
  const server = await startServerProcess();
  const payload = request(1024);
  const fetch = timedFetch();
  const make = (protocol) => new SecureChatCompletion({ baseUrl: server.url, allowHttp: true, fetch, maxRetries: 0, protocol });

  // 1. Warm clients, one request each, interleaved.
  const v2 = make(2);
  const v1 = make(1);
  await Promise.all([v2.create(payload), v1.create(payload)]);
  const warm = await compare({ v2: () => own(fetch, () => v2.create(payload)), v1: () => own(fetch, () => v1.create(payload)) }, { rounds });

  // 2. First request of a new client, in this (warm) process: key fetch included, key generation for v1.
  const first = await compare(
    {
      v2: () => own(fetch, () => make(2).create(payload)),
      v1: () => own(fetch, () => make(1).create(payload)),
    },
    { rounds: Math.max(5, rounds >> 2), warmup: 1 },
  );
  const fresh = { v2: [], v1: [], fetch: [] };
  for (let i = 0; i < FRESH_PROCESSES; i++) {
    for (const mode of ['v2', 'v1', 'fetch']) fresh[mode].push(await freshProcess(server.url, mode));
  }

  // 3. v2's steps alone.
  const steps = await v2Steps(server.url, payload, rounds);
  await Promise.all([v2.dispose(), v1.dispose()]);
  await server.close();
  const medianOf = (mode, field = 'ms') => median(fresh[mode].map((r) => r[field]));
  return { warm, first, fresh: { v2: medianOf('v2'), v1: medianOf('v1'), fetch: medianOf('fetch'), startup: medianOf('v2', 'startupMs') }, steps };
}

/** One first request in a new Node process (run as this file's child): `v2`, `v1`, or `fetch` (a bare first fetch() alone). */
function freshProcess(url, mode) {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), url, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  return new Promise((resolve, reject) => child.once('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`child exited ${code}`)))));
}

async function child(url, mode) {
  // Node's start-up and the loading of this file's imports (@nomyo/core among them), before the client exists.
  const startupMs = performance.now();
  const fetch = timedFetch();
  if (mode === 'fetch') {
    // Node loads its fetch implementation (undici) on the first call: the floor of any first request.
    const ms = await own(fetch, async () => (await fetch(url + PATHS.publicKey)).text());
    return process.stdout.write(JSON.stringify({ ms, startupMs }));
  }
  const client = new SecureChatCompletion({ baseUrl: url, allowHttp: true, fetch, maxRetries: 0, protocol: mode === 'v2' ? 2 : 1 });
  const ms = await own(fetch, () => client.create(request(1024)));
  await client.dispose();
  process.stdout.write(JSON.stringify({ ms, startupMs }));
}

/**
 * The steps of one warm v2 request, each timed alone: the HTTP exchange itself (a prepared package
 * posted with fetch and read back, server time taken out), sealing (K, its uses inside Web Crypto,
 * AES-GCM, base64, JSON), the answer key's derivation (which overlaps the exchange), and opening
 * (parse, AES-GCM, JSON).
 */
async function v2Steps(url, payload, rounds) {
  const fetch = timedFetch();
  const keyRes = await fetch(url + PATHS.publicKey);
  const serverKey = await parseServerKey(await keyRes.text(), keyRes.headers.get(HEADERS.protocol));
  const plaintext = encoder.encode(JSON.stringify(payload));
  const payloadId = crypto.randomUUID();
  const k = crypto.getRandomValues(new Uint8Array(32));
  const body = serializePackage((await sealRequestV2(plaintext, k, serverKey.key, { payloadId, tier: undefined })).package);
  const answerKey = await deriveAnswerKey(k, payloadId, 'decrypt');
  const answerText = serializePackage(await sealAnswerV2(encoder.encode(JSON.stringify(answer(1024))), await deriveAnswerKey(k, payloadId, 'encrypt'), payloadId));
  const subtle = globalThis.crypto.subtle;
  const r = await compare(
    {
      'HTTP exchange (fetch POST, read body)': () =>
        own(fetch, async () => {
          const res = await fetch(url + PATHS.secureCompletion, {
            method: 'POST',
            headers: { [HEADERS.contentType]: PACKAGE_CONTENT_TYPE, [HEADERS.payloadId]: payloadId },
            body,
          });
          await res.text();
        }),
      'seal: K, wrap, key imports, AES-GCM, base64, JSON': async () => {
        const t0 = performance.now();
        const key = crypto.getRandomValues(new Uint8Array(32));
        const sealed = await sealRequestV2(plaintext, key, serverKey.key, { payloadId, tier: undefined });
        serializePackage(sealed.package);
        key.fill(0);
        const ms = performance.now() - t0;
        await sealed.answerKey; // derived during the exchange in a real request: not counted here
        return ms;
      },
      '  in it, RSA-OAEP encrypt of K (RSA-4096 public)': () => subtle.encrypt({ name: 'RSA-OAEP' }, serverKey.key, k),
      'HKDF import + derive (runs during the exchange)': () => deriveAnswerKey(k, payloadId, 'decrypt'),
      'open: parse, AES-GCM, JSON.parse': async () => JSON.parse(new TextDecoder().decode(await openAnswerV2(parseJsonPackage(answerText), answerKey, payloadId))),
    },
    { rounds },
  );
  return r;
}

export function printProtocolV2(r) {
  console.log('\nProtocol v2 vs v1, client side, against the reference server in its own process (minus its processing time)');
  console.log(`one 1 KiB request, warm clients:   v2 ${fmt(r.warm.v2)}   v1 ${fmt(r.warm.v1)}   v2/v1 ${ratio(r.warm.v2, r.warm.v1)}`);
  console.log(`first request of a new client:     v2 ${fmt(r.first.v2)}   v1 ${fmt(r.first.v1)}   (in a warm process; v1 makes its RSA-4096 pair first)`);
  console.log(`  in a fresh process (median of ${FRESH_PROCESSES}): v2 ${fmt(r.fresh.v2)}   v1 ${fmt(r.fresh.v1)}   (process start-up and imports before it: ${fmt(r.fresh.startup).trim()})`);
  console.log(`  of which Node's first fetch() of a process, alone (undici loads): ${fmt(r.fresh.fetch).trim()}`);
  console.log('where a warm v2 request goes (each step alone):');
  for (const [step, ms] of Object.entries(r.steps)) console.log(`  ${step.padEnd(52)} ${fmt(ms)}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await child(process.argv[2], process.argv[3]);

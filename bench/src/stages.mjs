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
import { MAX_ANSWER_BODY_BYTES, MAX_ANSWER_DEPTH, parseServerKey } from '@nomyo/core/protocol';
import { PROCESSING_TIME_HEADER } from '@nomyo/server';
import { request } from './payloads.mjs';
import { median } from './stats.mjs';
import { startServerProcess } from './server-process.mjs';

const coreDir = dirname(createRequire(import.meta.url).resolve('@nomyo/core/package.json'));
const internal = (path) => import(pathToFileURL(join(coreDir, 'dist', path)).href);

/** Label, size, text kind (payloads.mjs): the plain text at each size, and the letter at 5 MiB. */
export const STAGE_SIZES = [
  ['100 KiB', 100 * 1024, 'plain'],
  ['5 MiB', 5 * 1024 * 1024, 'plain'],
  ['10 MiB', 10 * 1024 * 1024 - 256, 'plain'],
  ['5 MiB letter', 5 * 1024 * 1024, 'letter'],
];

/**
 * Runs the stages of one request the way SecureCompletionClient does (#attempt, client/round-trip.ts);
 * `probe(name, fn)` wraps each stage and returns its value. Serialize and encode are one step now
 * (the JSON is written straight into secure memory), as are encrypt, base64 and body (the cipher's
 * output goes base64 straight into the body buffer; a large one in place, over its own JSON), and
 * base64 decode and decrypt (a large answer in place, in the buffer it was read into).
 */
async function oneRequest(ctx, payload, probe) {
  const { m, memory, keys, protocol } = ctx;
  const secure = new m.context.SecureByteContext(memory);
  const payloadId = crypto.randomUUID();
  const headers = { 'Content-Type': 'application/octet-stream', 'X-Payload-ID': payloadId };
  const plaintext = await probe('serialize + encode', () => m.payload.serializePayload(payload, m.payload.sealablePayloads(secure)));
  const prepared = await probe('keys', async () => {
    if (protocol === 1) {
      headers['X-Public-Key'] = keys.publicKeyHeader;
      return { sealing: await m.pkg.v1Sealing(ctx.serverKey), opener: m.pkg.v1Opener(keys.privateKey) };
    }
    const { sealing, answerKey } = await secure.use(secure.randomBytes(32), (k) => m.v2.requestSealingV2(k, ctx.serverKey, { payloadId, tier: undefined }));
    return { sealing, opener: m.v2.answerOpenerV2(answerKey, payloadId) };
  });
  const body = await probe('encrypt + base64 + body', () => m.seal.sealBody(prepared.sealing, plaintext, m.wire.wireBuffers));
  let serverMs = 0;
  const response = await probe('fetch send', async () => {
    // Sent as the client sends it with Node's own fetch (transport/send-body.ts sendInit).
    const sending = m.sendBody.sendInit({ method: 'POST', headers, body: body.bytes }, true);
    const res = await fetch(`${ctx.url}/v1/chat/secure_completion`, sending.init);
    serverMs = Number(res.headers.get(PROCESSING_TIME_HEADER) ?? 0);
    sending.revoke();
    sending.done(res.status === 200);
    body.release();
    return res;
  }, () => serverMs);
  // As the client reads it (client/round-trip.ts): a large answer into secure memory, a small one into the wire buffers.
  const answers = { secure: false, take: (size) => (size < m.sizes.LARGE_BODY_BYTES ? m.wire.wireBuffers : secure).take(size) };
  const answer = await probe('response read', () => m.readBody.readBodyBytes(response, MAX_ANSWER_BODY_BYTES, answers));
  const text = { fatal: false, parse: m.pkg.parseJsonPackage };
  const read = await probe('parse (locate)', () => m.read.readPackageBody(answer.bytes, text));
  // As the client opens it: a large answer where it is (its plaintext a view of the answer's buffer).
  const opened = await probe('base64 decode + decrypt', () => m.open.openBody(answer, { text, read, opener: prepared.opener, plaintexts: secure, inPlace: answer.secure }));
  const value = await probe('decode + JSON.parse', () =>
    secure.use(opened.plaintext, (p) =>
      m.json.parseJsonBytes(p, {
        fatal: true,
        parse: (t) => {
          if (m.depth.jsonNestingExceeds(t, MAX_ANSWER_DEPTH)) throw new Error('too deep');
          return JSON.parse(t);
        },
      }),
    ),
  );
  await probe('schema check', () => m.completion.checkChatCompletion(value));
}

export async function stages({ rounds }) {
  if (typeof globalThis.gc !== 'function') throw new Error('the stage breakdown needs node --expose-gc');
  const server = await startServerProcess();
  const names = {
    pkg: 'protocol/package.js',
    v2: 'protocol/v2.js',
    read: 'protocol/body/read.js',
    open: 'protocol/body/open.js',
    seal: 'protocol/body/seal.js',
    json: 'protocol/json-parse.js',
    depth: 'protocol/json-depth.js',
    completion: 'protocol/completion.js',
    payload: 'client/payload.js',
    readBody: 'transport/read-body.js',
    sendBody: 'transport/send-body.js',
    context: 'memory/context.js',
    wire: 'memory/wire-buffers.js',
    select: 'memory/select.js',
    sizes: 'sizes.js',
  };
  const m = Object.fromEntries(await Promise.all(Object.entries(names).map(async ([k, path]) => [k, await internal(path)])));
  const { SecureCompletionClient } = await import('@nomyo/core');
  const client = new SecureCompletionClient({ routerUrl: server.url, allowHttp: true });
  const keys = await client.keyPair();
  const serverKey = (await parseServerKey(await (await fetch(`${server.url}/pki/public_key`)).text())).key;
  // The client's own memory protection (the addon's pool when it is installed).
  const memory = await m.select.selectSecureMemory(true);

  const rows = [];
  for (const protocol of [2, 1]) {
    const ctx = { url: server.url, serverKey, keys, m, memory, protocol };
    for (const [label, size, kind] of STAGE_SIZES) {
      const payload = request(size, kind);
      const n = size > 1e6 ? Math.max(9, rounds >> 1) : rounds;
      const times = new Map();
      const faults = new Map();
      const record = (map, name, value) => (map.get(name) ?? map.set(name, []).get(name)).push(value);
      // Timing rounds: no forced collections (a running application does not get them either). The
      // page faults are the fresh pages a stage touched (first touch is slow here), pools warm.
      for (let i = 0; i < n + 2; i++) {
        await oneRequest(ctx, payload, async (name, fn, minus) => {
          const f0 = process.resourceUsage().minorPageFault;
          const t0 = performance.now();
          const v = await fn();
          const ms = performance.now() - t0 - (minus ? minus() : 0);
          if (i >= 2) record(times, name, ms), record(faults, name, process.resourceUsage().minorPageFault - f0);
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
      rows.push({ label, size, protocol, stages: [...times].map(([name, ms]) => ({ name, ms: median(ms), faults: median(faults.get(name)), bytes: allocated.get(name) ?? 0 })) });
    }
  }
  await client.dispose();
  await server.close();
  return rows;
}

const mib = (b) => (b / 1048576).toFixed(b >= 1048576 * 10 ? 0 : 1).padStart(6);

export function printStages(rows) {
  for (const protocol of [2, 1]) {
    const mine = rows.filter((r) => r.protocol === protocol);
    console.log(`\nStage breakdown of one protocol ${protocol} request (client side; fetch send is minus the server's own time)`);
    console.log('stage                      ' + mine.map((r) => `${r.label.padStart(12)} ms   faults   MiB new`).join('   '));
    for (const name of mine[0].stages.map((s) => s.name)) {
      const cells = mine.map((r) => {
        const s = r.stages.find((x) => x.name === name);
        return `${s.ms.toFixed(s.ms >= 100 ? 0 : 2).padStart(12)}   ${String(Math.round(s.faults)).padStart(6)}    ${mib(s.bytes)}`;
      });
      console.log(name.padEnd(27) + cells.join('    '));
    }
    const totals = mine.map((r) => {
      const ms = r.stages.reduce((a, s) => a + s.ms, 0);
      const bytes = r.stages.reduce((a, s) => a + s.bytes, 0);
      const faults = r.stages.reduce((a, s) => a + s.faults, 0);
      return `${ms.toFixed(ms >= 100 ? 0 : 2).padStart(12)}   ${String(Math.round(faults)).padStart(6)}    ${mib(bytes)}`;
    });
    console.log('total'.padEnd(27) + totals.join('    '));
    console.log('allocated bytes / payload: ' + mine.map((r) => `${r.label} ${(r.stages.reduce((a, s) => a + s.bytes, 0) / r.size).toFixed(1)}x`).join(', '));
  }
}

/**
 * Memory of large round trips, as the kernel counts it: the peak resident set (VmHWM) that one
 * 10 MiB echo round trip adds, in the client's process and in the reference server's, and a steady
 * state of 50 sequential 5 MiB requests (time and RSS of each), beside how much this machine alone
 * varies the time of identical work over as much memory.
 *
 * Linux only: writing 5 to /proc/PID/clear_refs resets a process's peak to its current RSS, so
 * the peak that follows is the round trip's own. The client runs in a fresh child process, so
 * nothing this bench did before has already mapped the pages it needs.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startServerProcess } from './server-process.mjs';
import { median } from './stats.mjs';
import { lastServerMs, watchServerTime } from './server-time.mjs';

const MIB = 1024 * 1024;

export function status(pid, field) {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

export function resetPeak(pid) {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/** Fresh processes per measurement (RSS_RUNS): a first round trip's peak depends on when collections happen. */
const RUNS = Number(process.env.RSS_RUNS ?? 5);
/** The text of the 10 MiB round trips (RSS_TEXT, a kind of payloads.mjs): plain prose unless said. */
const TEXT = process.env.RSS_TEXT ?? 'plain';
/**
 * glibc's malloc gives free memory at the top of its heap back to the kernel once there is more of
 * it than a threshold, which it raises as large blocks come and go: a 5 MiB block freed and taken
 * again can then cost 1,280 fresh pages, in runs of requests. A fixed threshold of 64 MiB keeps it.
 */
const KEEP_FREED = 'glibc.malloc.trim_threshold=67108864';

/**
 * Runs the client side (this file as a child, see below) and measures the server alongside, in
 * {@link RUNS} fresh pairs of processes; then the steady state in a fresh pair of its own (after a
 * 1 KiB request only: a 10 MiB one would have raised malloc's threshold, see {@link KEEP_FREED}),
 * and with glibc once more with that threshold fixed, for the client and the server.
 */
export async function peakRss() {
  if (process.platform !== 'linux') return undefined;
  const runs = [];
  for (let i = 0; i < RUNS; i++) runs.push(await onePair('rss'));
  const pick = (key) => runs.map((r) => r[key]);
  const steady = [{ allocator: process.env.GLIBC_TUNABLES ? `GLIBC_TUNABLES=${process.env.GLIBC_TUNABLES}` : "malloc's defaults", ...(await onePair('steady')) }];
  if (process.report.getReport().header.glibcVersionRuntime && !process.env.GLIBC_TUNABLES) {
    steady.push({ allocator: `GLIBC_TUNABLES=${KEEP_FREED}`, ...(await onePair('steady-nomyo', { ...process.env, GLIBC_TUNABLES: KEEP_FREED })) });
  }
  return { payload: runs[0].payload, runs: RUNS, clientAdded: pick('clientAdded'), clientAddedAgain: pick('clientAddedAgain'), serverAdded: pick('serverAdded'), serverAddedAgain: pick('serverAddedAgain'), steady };
}

/** One client child (`mode`: see {@link child}) and its server, both with `env`. */
async function onePair(mode, env = process.env) {
  const server = await startServerProcess([], [], env);
  const args = ['--expose-gc', fileURLToPath(import.meta.url), server.url, mode];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], env });
  // A failed child must not leave the router running (it would keep the bench's output open).
  const result = await new Promise((resolve, reject) => {
    const out = {};
    child.on('message', (msg) => {
      if (msg.type === 'before') {
        resetPeak(server.pid);
        out.serverBase = status(server.pid, 'VmRSS');
        child.send('go');
      } else if (msg.type === 'after') {
        // The first round trip's peak, then the second's (the router's buffers are pooled by then).
        out[out.serverAdded === undefined ? 'serverAdded' : 'serverAddedAgain'] = status(server.pid, 'VmHWM') - out.serverBase;
        Object.assign(out, msg);
        child.send('next');
      } else if (msg.type === 'done') resolve(Object.assign(out, msg));
    });
    child.once('exit', (code) => code !== 0 && reject(new Error(`peak-rss child exited ${code}`)));
  }).finally(() => server.close());
  return result;
}

export function printPeakRss(r) {
  if (!r) return console.log('\nPeak RSS: Linux only (reads /proc)');
  const x = (values) => {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = sorted[sorted.length >> 1];
    return `${(mid / MIB).toFixed(0)} MiB (${(mid / r.payload).toFixed(1)}x the payload; ${sorted.map((b) => (b / MIB).toFixed(0)).join(', ')} MiB)`;
  };
  console.log(`\nPeak RSS added by one 10 MiB echo round trip of ${TEXT} text (${(r.payload / MIB).toFixed(1)} MiB out, as much back), median of ${r.runs} fresh processes`);
  console.log(`  client, first 10 MiB request of the process: ${x(r.clientAdded)}`);
  console.log(`  client, a second one:                        ${x(r.clientAddedAgain)}`);
  console.log(`  reference server, first 10 MiB request:      ${x(r.serverAdded)}`);
  console.log(`  reference server, a second one:              ${x(r.serverAddedAgain)}`);
  const clients = r.steady.flatMap((run) => [['@nomyo', run.allocator, run.steady], ['bare Web Crypto + fetch, same router', run.allocator, run.bare]]);
  for (const [who, allocator, runs] of clients.filter(([, , runs]) => runs)) {
    const last = runs.slice(10);
    console.log(`Steady state, ${who}, ${allocator}: 50 sequential 5 MiB requests in a fresh process, the last 40:`);
    const series = [
      ['wall time', last.map((s) => s.ms)],
      ['client side (minus the server\'s own time)', last.map((s) => s.ms - s.serverMs)],
      // The same work every time: how much this machine alone makes identical requests vary.
      ['the server\'s own time', last.map((s) => s.serverMs)],
    ];
    for (const [what, ms] of series) {
      console.log(`  ${what}: ${spread(ms)}, median of requests 11-30 vs 31-50 ${(median(ms.slice(0, 20)) / median(ms.slice(20))).toFixed(2)}`);
    }
    // Fresh pages: a 5 MiB block is 1,280 of them (see KEEP_FREED).
    const faults = last.map((s) => s.faults);
    console.log(`  client page faults per request: median ${median(faults)}, mean ${(faults.reduce((a, b) => a + b, 0) / faults.length).toFixed(0)}, ` +
      `max ${Math.max(...faults)}; over 500 (2 MiB of fresh pages) in ${faults.filter((f) => f > 500).length}/${faults.length}`);
    const rss = last.map((s) => s.rss / MIB);
    // Least-squares slope: a leak shows as a steady climb, collections as a saw around a flat line.
    const mean = rss.reduce((a, b) => a + b, 0) / rss.length;
    const mid = (rss.length - 1) / 2;
    const slope = rss.reduce((a, y, i) => a + (i - mid) * (y - mean), 0) / rss.reduce((a, _y, i) => a + (i - mid) ** 2, 0);
    console.log(`  RSS ${Math.min(...rss).toFixed(0)}-${Math.max(...rss).toFixed(0)} MiB, trend ${slope >= 0 ? '+' : ''}${slope.toFixed(2)} MiB per request ` +
      `(first 10: up to ${(Math.max(...runs.slice(0, 10).map((s) => s.rss)) / MIB).toFixed(0)} MiB)`);
  }
  const { machine } = r.steady[0];
  console.log('This machine alone, identical work, 50 times, the last 40:');
  console.log(`  40 MiB copied between two mapped buffers: ${spread(machine.copy.slice(10))}`);
  console.log(`  node:crypto AES-256-GCM over 20 MiB in the client's pieces (no I/O): ${spread(machine.cipher.slice(10))}`);
  console.log(`  Node's fetch, 7 MiB each way with a bare node:http process (no crypto, no JSON): ${spread(machine.fetch.slice(10))}`);
  console.log(`  the same with node:http as the client too, the answer into a mapped buffer: ${spread(machine.http.slice(10))}`);
  console.log('The same requests counted in instructions, which the machine does not vary: pnpm bench instructions (valgrind, minutes)');
}

/** A series' median, extremes, middle 80% and how many lie within 10% of the median. */
function spread(ms) {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q) => sorted[Math.round(q * (sorted.length - 1))];
  const mid = median(ms);
  const near = ms.filter((x) => Math.abs(x - mid) <= 0.1 * mid).length;
  return `median ${mid.toFixed(1)} ms, min ${at(0).toFixed(1)}, max ${at(1).toFixed(1)} (max/min ${(at(1) / at(0)).toFixed(2)}), ` +
    `middle 80% ${at(0.1).toFixed(1)}-${at(0.9).toFixed(1)} (${(at(0.9) / at(0.1)).toFixed(2)}), within 10% of the median ${near}/${ms.length}`;
}

/** The time of `work` (sync or async), run 50 times one after another, in ms. */
async function fiftyTimes(work) {
  const runs = [];
  for (let i = 0; i < 50; i++) {
    const t0 = performance.now();
    await work();
    runs.push(performance.now() - t0);
  }
  return runs;
}

/**
 * What this machine alone makes of identical work, 50 times (the last 40, as the steady state), in
 * ms: 40 MiB copied between two buffers already mapped (no allocation, no crypto, no network), and
 * the cipher work of the client's requests without their I/O: 4 x 5 MiB through node:crypto's
 * AES-256-GCM in the pieces core uses, each piece a new Buffer, as node:crypto returns them. The
 * second varies as much as whole requests do: the runtime's memory allocator returns freed memory
 * to the kernel and takes it back (GLIBC_TUNABLES=glibc.malloc.trim_threshold=4000000000 quiets it).
 */
async function machineSpread() {
  const from = new Uint8Array(5 * MIB).fill(1);
  const to = new Uint8Array(5 * MIB);
  const { createCipheriv, randomBytes } = await import('node:crypto');
  const { GCM_PIECE_BYTES } = await import(pathToFileURL(join(dirname(createRequire(import.meta.url).resolve('@nomyo/core/package.json')), 'dist/crypto/gcm/types.js')).href);
  const key = randomBytes(32);
  return {
    copy: await fiftyTimes(() => {
      for (let k = 0; k < 8; k++) to.set(from);
    }),
    cipher: await fiftyTimes(() => {
      for (let k = 0; k < 4; k++) {
        const cipher = createCipheriv('aes-256-gcm', key, randomBytes(12));
        for (let i = 0; i < from.length; i += GCM_PIECE_BYTES) cipher.update(from.subarray(i, i + GCM_PIECE_BYTES));
        cipher.final();
      }
    }),
  };
}

/** A node:http process that reads a body and answers with as many bytes as a 5 MiB request's package: the transport alone. */
const BARE_ECHO = `const reply = Buffer.alloc(7 << 20, 65);
require('node:http').createServer((req, res) => {
  req.on('data', () => {}).on('end', () => res.setHeader('content-length', reply.length).end(reply));
}).listen(0, '127.0.0.1', function () { console.log(this.address().port); });`;

/**
 * Round trips of a 5 MiB request's package size (base64 of 5 MiB: 7 MiB) each way, 50 times, in ms:
 * through Node's fetch, then through node:http with a kept-alive connection and the answer copied
 * into a buffer already mapped (no allocation of ours at all).
 */
async function transportSpread() {
  const echo = spawn(process.execPath, ['-e', BARE_ECHO], { stdio: ['ignore', 'pipe', 'inherit'] });
  const agent = new Agent({ keepAlive: true });
  try {
    const port = await new Promise((resolve) => echo.stdout.once('data', (d) => resolve(String(d).trim())));
    const body = Buffer.alloc(7 * MIB, 66);
    const into = Buffer.alloc(7 * MIB);
    const viaHttp = () => new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', agent, headers: { 'content-length': body.length } }, (res) => {
        let at = 0;
        res.on('data', (chunk) => (at += chunk.copy(into, at))).once('end', resolve).once('error', reject);
      });
      req.once('error', reject).end(body);
    });
    return {
      fetch: await fiftyTimes(async () => void (await (await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body })).arrayBuffer())),
      http: await fiftyTimes(viaHttp),
    };
  } finally {
    agent.destroy();
    echo.kill();
  }
}

/** The bare client of end-to-end.mjs (v1, Web Crypto + fetch): one 5 MiB round trip per call, returning the server's time. */
async function bareClient(url, payload) {
  const { bareOpen, bareSeal } = await import('./bare.mjs');
  const { parseServerKey, generateRsaKeyPair, derToPem } = await import('@nomyo/core/protocol');
  const keys = await generateRsaKeyPair(4096, false);
  const pem = encodeURIComponent(derToPem(new Uint8Array(await crypto.subtle.exportKey('spki', keys.publicKey)), 'PUBLIC KEY'));
  const serverKey = await parseServerKey(await (await fetch(`${url}/pki/public_key`)).text());
  return async () => {
    const res = await fetch(`${url}/v1/chat/secure_completion`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream', 'X-Payload-ID': crypto.randomUUID(), 'X-Public-Key': pem },
      body: await bareSeal(payload, serverKey.key),
    });
    await bareOpen(await res.text(), keys.privateKey);
    return lastServerMs();
  };
}

/**
 * The child: one client and a 1 KiB warm-up, then by `mode`: 'rss', two 10 MiB round trips, each
 * with its peak measured; 'steady', the steady state of @nomyo, then of the bare client, then the
 * machine's own spread; 'steady-nomyo', @nomyo's steady state alone.
 */
async function child(url, mode) {
  // The server's time of each exchange, read off Node's fetch (server-time.mjs): the client keeps
  // the runtime's own fetch, which sends large bodies the direct way (see core's transport/http.ts).
  watchServerTime();
  const { SecureChatCompletion } = await import('@nomyo/core');
  const { request: chatRequest } = await import('./payloads.mjs');
  const client = new SecureChatCompletion({ baseUrl: url, allowHttp: true, maxRetries: 0 });
  await client.create(chatRequest(1024));
  if (mode === 'rss') {
    const payloadBytes = 10 * MIB - 256;
    const payload = chatRequest(payloadBytes, TEXT);
    const step = (type, extra = {}) => new Promise((resolve) => (process.once('message', resolve), process.send({ type, ...extra })));
    const measure = async () => {
      globalThis.gc();
      resetPeak(process.pid);
      const base = status(process.pid, 'VmRSS');
      await client.create(payload);
      return status(process.pid, 'VmHWM') - base;
    };
    await step('before');
    const clientAdded = await measure();
    await step('after', { clientAdded, payload: payloadBytes });
    await step('before');
    const clientAddedAgain = await measure();
    await step('after', { clientAddedAgain });
    await client.dispose();
    process.send({ type: 'done' });
    process.disconnect();
    return;
  }
  const five = chatRequest(5 * MIB);
  const loop = async (one) => {
    const runs = [];
    for (let i = 0; i < 50; i++) {
      const faults = process.resourceUsage().minorPageFault;
      const t0 = performance.now();
      const serverMs = await one();
      runs.push({ ms: performance.now() - t0, serverMs, rss: status(process.pid, 'VmRSS'), faults: process.resourceUsage().minorPageFault - faults });
    }
    return runs;
  };
  const steady = await loop(async () => {
    await client.create(five);
    return lastServerMs();
  });
  await client.dispose();
  if (mode === 'steady-nomyo') process.send({ type: 'done', steady });
  else process.send({ type: 'done', steady, bare: await loop(await bareClient(url, five)), machine: { ...(await machineSpread()), ...(await transportSpread()) } });
  process.disconnect();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await child(process.argv[2], process.argv[3]);

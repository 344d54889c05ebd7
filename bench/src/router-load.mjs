/**
 * The load of `pnpm bench router`: v2 requests sealed ahead of time (so the client's sealing is not
 * in the way of the router under test), posted with node:http(s) over kept-alive connections, at a
 * given concurrency; and the CPU time of the processes involved, read from /proc, to say where the
 * time went.
 */
import http from 'node:http';
import https from 'node:https';
import { readFileSync, readdirSync } from 'node:fs';
import {
  HEADERS,
  PACKAGE_CONTENT_TYPE,
  PATHS,
  deriveAnswerKey,
  openAnswerV2,
  parseJsonPackage,
  parseServerKey,
  sealRequestV2,
  serializePackage,
} from '@nomyo/core/protocol';
import { PROCESSING_TIME_HEADER } from '@nomyo/server';
import { request as payloadOf } from './payloads.mjs';
import { quantile } from './stats.mjs';

const encoder = new TextEncoder();

/** A keep-alive agent for `url` with room for `sockets` connections (`ca`: trust for a test certificate). */
export function agentFor(url, sockets, ca) {
  return url.startsWith('https:') ? new https.Agent({ keepAlive: true, maxSockets: sockets, ca }) : new http.Agent({ keepAlive: true, maxSockets: sockets });
}

/** One POST of `body` to `url` with `headers`; resolves to the status, the body as text and the router's processing time. */
export function post(url, headers, body, agent) {
  const target = new URL(url);
  const mod = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(target, { method: 'POST', headers: { ...headers, 'Content-Length': Buffer.byteLength(body) }, agent }, (res) => {
      const parts = [];
      res.on('data', (part) => parts.push(part)).on('end', () =>
        resolve({ status: res.statusCode, text: Buffer.concat(parts).toString('utf8'), serverMs: Number(res.headers[PROCESSING_TIME_HEADER.toLowerCase()] ?? NaN) }),
      );
      res.on('error', reject);
    });
    req.setNoDelay(true);
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * `n` v2 requests for the router at `url` of about `bytes` of plaintext each (every third with
 * `stream: true` when `streams`), each with its own payload id and `K`: what a client would post,
 * sealed now. `open(i, text)` opens the answer to request `i` (a whole one) and returns its completion.
 */
export async function sealedRequests(url, n, { bytes = 1024, streams = false } = {}) {
  const res = await fetch(url + PATHS.publicKey);
  const { key } = await parseServerKey(await res.text(), res.headers.get(HEADERS.protocol));
  const requests = [];
  for (let i = 0; i < n; i++) {
    const payloadId = crypto.randomUUID();
    const k = crypto.getRandomValues(new Uint8Array(32));
    const stream = streams && i % 3 === 2;
    const payload = { ...payloadOf(bytes), ...(stream ? { stream: true } : {}) };
    const sealed = await sealRequestV2(encoder.encode(JSON.stringify(payload)), k, key, { payloadId, tier: undefined });
    requests.push({
      payloadId,
      k,
      stream,
      headers: { [HEADERS.contentType]: PACKAGE_CONTENT_TYPE, [HEADERS.payloadId]: payloadId },
      body: serializePackage(sealed.package),
    });
  }
  const open = async (i, text) => {
    const { k, payloadId } = requests[i];
    const plain = await openAnswerV2(parseJsonPackage(text), await deriveAnswerKey(k, payloadId, 'decrypt'), payloadId);
    return JSON.parse(new TextDecoder().decode(plain));
  };
  return { requests, open };
}

/**
 * Posts `requests` (from {@link sealedRequests}) to `url`'s secure-completion path, `concurrency`
 * at a time, in order and round again when they run out (the router keeps no state between
 * requests), until `count` have been sent or `seconds` have passed. Any status but 200 stops it
 * with an error. `each(done)` runs after every answer. Returns the answers, the seconds, the rate
 * and the latencies' p50 and p99 in ms.
 */
export async function drive(url, requests, { concurrency, agent, count = Infinity, seconds = Infinity, each = () => {} }) {
  const target = url + PATHS.secureCompletion;
  const latencies = [];
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < count && performance.now() < until) {
      const r = requests[next++ % requests.length];
      const start = performance.now();
      const answer = await post(target, r.headers, r.body, agent);
      if (answer.status !== 200) throw new Error(`status ${answer.status}: ${answer.text.slice(0, 200)}`);
      latencies.push(performance.now() - start);
      each(++done);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const span = (performance.now() - t0) / 1000;
  return { answered: done, seconds: span, rate: done / span, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) };
}

const TICK_MS = 10; // Linux's USER_HZ is 100 on every architecture Node runs on

/** CPU time (user + system) of process `pid` so far, in ms. */
export function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

/** The pids whose parent is `pid` (nginx's workers). */
export function childPids(pid) {
  const out = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** RSS of process `pid` now, in bytes. */
export function rssOf(pid) {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** CPU time the whole machine has spent busy so far (all cores, /proc/stat), in ms. */
export function machineBusyMs() {
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).map(Number);
  // user nice system idle iowait irq softirq steal: all but idle and iowait is work.
  const busy = ticks.slice(0, 8).reduce((sum, t, i) => (i === 3 || i === 4 ? sum : sum + t), 0);
  return busy * TICK_MS;
}

/** This process's CPU time so far, in ms. */
export function ownCpuMs() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

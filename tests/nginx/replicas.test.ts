/**
 * Replicas behind a real load balancer, restarted under load: three `nomyo-server` processes that
 * share one key file, behind Debian's nginx with the configuration of docs/examples/nginx.conf
 * (only its addresses, ports and certificate paths replaced), TLS at nginx. A load generator in a
 * process of its own (fixtures/load.mjs) sends 2,000 requests, 32 at a time: whole answers of both
 * protocol versions and streams, prompts of 100 B to 64 KiB. Meanwhile each replica in turn gets
 * SIGTERM, drains, exits 0, is started again on its port and waits for `/healthz` 200. No request
 * may fail and no stream may be cut off: every answer is opened and checked against its request.
 *
 * What keeps a restart invisible (docs/deployment.md, "Graceful drain and rolling restarts"): a
 * draining replica refuses new connections and answers 503 on kept-alive ones, and nginx sends such
 * a request on to the next replica (`proxy_next_upstream error timeout http_503 non_idempotent`);
 * what is under way on the draining replica, streams included, finishes there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@nomyo/test-support/ports';
import { makeTestCertificates, type TestCertificates } from '@nomyo/test-support/tls';
import { nginxExample } from '../../scripts/nginx-example.mjs';
import { startNginx, type Nginx } from './nginx.js';
import { startReplica, type Replica } from './replicas.js';
import { VECTOR_KEY_FILE } from '@nomyo/test-support/keys';

const LOAD = fileURLToPath(new URL('./fixtures/load.mjs', import.meta.url));
const VECTOR_KEY = VECTOR_KEY_FILE; // 0600: copies keep the mode
const REQUESTS = 2_000;
const CONCURRENCY = 32;
const SEED = 26;
/** The echo model's pause between streamed words: a stream of 8 to 24 words lasts 0.1 to 0.3 s. */
const ECHO_DELAY_MS = 10;
/** The load's progress (answers received) at which each replica's restart begins. */
const RESTART_AT = [150, 700, 1250];

interface LoadResult {
  count: number;
  seconds: number;
  latencies: number[];
  failures: { i: number; kind: string; bytes: number; stage: string; error: string }[];
  cutOff: number;
  counts: Record<string, number>;
}

/** What the replica's /metrics says is under way now: requests (streams included) and streams. */
async function inFlight(url: string): Promise<{ requests: number; streams: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const gauge = (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { requests: gauge('nomyo_requests_in_flight'), streams: gauge('nomyo_streams_in_flight') };
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.max(0, Math.ceil(q * xs.length) - 1))]!;

let tls: TestCertificates;
let keyDir: string;
let replicas: Replica[] = [];
let nginx: Nginx | undefined;
let load: ChildProcess | undefined;

beforeAll(async () => {
  tls = makeTestCertificates();
  // One key file for all replicas, as an operator copies it to each machine: owner-only.
  keyDir = mkdtempSync(path.join(tmpdir(), 'nomyo-replicas-'));
  const keyFile = path.join(keyDir, 'server_key.pem');
  copyFileSync(VECTOR_KEY, keyFile);
  chmodSync(keyFile, 0o600);
  const ports = [await freePort(), await freePort(), await freePort()];
  replicas = await Promise.all(ports.map((port) => startReplica(port, ['--key-file', keyFile, '--echo-delay', String(ECHO_DELAY_MS)])));
  nginx = await startNginx({
    config: ({ port, dir }) =>
      nginxExample({ servers: replicas.map((r) => `127.0.0.1:${r.port}`), listen: `127.0.0.1:${port}`, tls, accessLog: path.join(dir, 'replicas.log') }),
  });
});

afterAll(async () => {
  // A test that failed midway may leave the load generator running.
  if (load && load.exitCode === null && load.signalCode === null) load.kill('SIGKILL');
  await nginx?.close();
  await Promise.all(replicas.map((r) => r.kill()));
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
  tls?.cleanup();
});

describe('three replicas behind nginx, restarted one at a time under load', () => {
  it(`answers all ${REQUESTS} requests (v1, v2, streams; 100 B to 64 KiB), none failed, no stream cut off`, async () => {
    const started = performance.now();
    load = spawn(process.execPath, [LOAD, nginx!.url, String(REQUESTS), String(CONCURRENCY), String(SEED)], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: tls.caFile },
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    let loadStderr = '';
    load.stderr!.setEncoding('utf8').on('data', (text: string) => (loadStderr += text));
    const loadExited = once(load, 'exit');
    let done = 0;
    let progressed: () => void = () => {};
    let result: LoadResult | undefined;
    load.on('message', (msg: { type: string; done?: number } & Partial<LoadResult>) => {
      if (msg.type === 'progress') {
        done = msg.done!;
        progressed();
      } else if (msg.type === 'result') result = msg as LoadResult;
    });
    const reached = (n: number) =>
      new Promise<void>((resolve, reject) => {
        const check = () => (done >= n ? resolve() : undefined);
        progressed = check;
        void loadExited.then(() => reject(new Error(`the load ended at ${done} answers before ${n}: ${loadStderr}`)));
        check();
      });

    // The rolling restart, while the load runs. Where the log stood when each replica was back:
    // its address must appear after that, so it did rejoin.
    const logFile = path.join(nginx!.dir, 'replicas.log');
    const logLength = () => readFileSync(logFile, 'utf8').length;
    const restarts: { port: number; exitCode: number | null; atAnswer: number; ms: number; logAt: number; busy: { requests: number; streams: number } }[] = [];
    try {
      for (const [k, replica] of replicas.entries()) {
        await reached(RESTART_AT[k]!);
        const t0 = performance.now();
        const atAnswer = done;
        // What the drain has to finish: read a moment before the signal.
        const busy = await inFlight(replica.url);
        const exitCode = await replica.stop();
        await replica.start();
        restarts.push({ port: replica.port, exitCode, atAnswer, ms: performance.now() - t0, logAt: logLength(), busy });
      }
    } finally {
      // The last requests wait for this: some always come after the last restart.
      load.send({ type: 'release' });
    }
    await loadExited;
    const seconds = (performance.now() - started) / 1000;
    const diagnostics = () => `load: ${loadStderr}\nnginx: ${nginx!.errorLog()}\n${replicas.map((r) => `replica ${r.port}: ${r.stderr()}`).join('\n')}`;
    expect(result, diagnostics()).toBeDefined();
    const r = result!;

    // What nginx saw: which replica answered each request, and how many went on to another.
    const log = readFileSync(logFile, 'utf8');
    const lines = log.trim().split('\n');
    const movedOn = lines.filter((line) => line.split('"')[3]!.includes(',')).length;
    const toClient503 = lines.filter((line) => line.startsWith('503 ')).length;
    const p50 = quantile(r.latencies, 0.5);
    const p99 = quantile(r.latencies, 0.99);
    console.log(
      `replicas behind nginx: ${r.count} requests (${Object.entries(r.counts).map(([k, n]) => `${k} ${n}`).join(', ')}) in ${r.seconds.toFixed(1)} s at concurrency ${CONCURRENCY}; ` +
        `latency p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms; restarts survived: ${restarts.length} ` +
        `(${restarts.map((x) => `port ${x.port} at answer ${x.atAnswer} with ${x.busy.requests} requests in flight, ${x.busy.streams} of them streams, back in ${x.ms.toFixed(0)} ms`).join('; ')}); ` +
        `nginx sent ${movedOn} requests on to another replica, ${toClient503} 503s reached the client (which retried); test ${seconds.toFixed(1)} s`,
    );

    expect(r.failures.slice(0, 5), diagnostics()).toEqual([]);
    expect(r.failures).toHaveLength(0);
    expect(r.cutOff).toBe(0);
    expect(r.latencies).toHaveLength(REQUESTS);
    for (const kind of ['v1', 'v2', 'v2-stream', 'v1-stream']) expect(r.counts[kind], kind).toBeGreaterThan(0);
    expect(restarts.map((x) => x.exitCode)).toEqual([0, 0, 0]);
    // The drains had work to finish, streams among it: the restarts were not between requests.
    expect(restarts.reduce((sum, x) => sum + x.busy.requests, 0)).toBeGreaterThan(0);
    expect(restarts.reduce((sum, x) => sum + x.busy.streams, 0)).toBeGreaterThan(0);
    for (const x of restarts) expect(log.slice(x.logAt), `replica ${x.port} answered after its restart`).toContain(`"127.0.0.1:${x.port}" "200"`);
  });
});

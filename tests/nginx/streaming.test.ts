/**
 * A streamed answer through a real nginx, as it is deployed: the `nomyo-server` CLI behind nginx
 * with TLS, nginx's default response buffering on, and a client that trusts the test's CA. Tokens
 * must arrive as the model makes them (the router's `X-Accel-Buffering: no` is what makes nginx
 * pass each event on), and a client that stops reading must stop the upstream behind the router:
 * over HTTP/1.1 and over HTTP/2 between the client and nginx (nginx's access log says which).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCertificates, type TestCertificates } from '@nomyo/test-support/tls';
import { chunk, event, startEvents, startUpstream, type ScriptedUpstream } from '../integration/sse-upstream.js';
import { startNginx, type Nginx } from './nginx.js';
import { startRouterProcess, type RouterProcess } from './router-cli.js';

const CLIENT = fileURLToPath(new URL('./fixtures/stream-client.mjs', import.meta.url));
const DELAY_MS = 100; // --echo-delay: the echo model's pause before each word
const WORDS = 'the quick brown fox jumps over the lazy sleeping dog';
// "echo: " and the ten words come one pause after another: the first and the last ~1 s apart.
const MADE_OVER_MS = DELAY_MS * WORDS.split(' ').length;

interface ClientResult {
  metadata?: { streamed: boolean; protocol: number };
  createdAt?: number;
  chunks: { content: string; at: number }[];
  error?: { name: string; message: string };
}

/**
 * Runs the client fixture in its own process. With `stop`, the process stays after printing until
 * `finish()` (so its connection is closed by the stop alone); without, it exits by itself. With
 * `http2`, its fetch may speak HTTP/2 (undici's, with `allowH2`).
 */
function runClient(url: string, tls: TestCertificates, { stop, http2 = false }: { stop?: string; http2?: boolean } = {}) {
  const child = spawn(process.execPath, [CLIENT, url, WORDS, ...(stop ? [stop] : [])], {
    env: { ...process.env, NODE_EXTRA_CA_CERTS: tls.caFile, STREAM_CLIENT_HTTP2: http2 ? '1' : '0' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  // 'close', not 'exit': by then its stdout has been read, so a printed result is never missed.
  const exited = once(child, 'close');
  const line = once(createInterface({ input: child.stdout }), 'line') as Promise<[string]>;
  const result = Promise.race([line, exited.then(() => Promise.reject(new Error(`the client exited without a result: ${stderr}`)))]).then(
    ([text]) => JSON.parse(text) as ClientResult,
  );
  return {
    result,
    finish: async () => {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The arrival times of the chunks that carry content. */
const contentTimes = (result: ClientResult) => result.chunks.filter((c) => c.content !== '').map((c) => c.at);
const gaps = (times: number[]) => times.slice(1).map((t, i) => t - times[i]!);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/**
 * The protocols (`HTTP/1.1`, `HTTP/2.0`) of the sealed requests nginx has logged, each once, after
 * waiting up to 5 s for the first: nginx logs a request when it ends.
 */
async function sealedRequestProtocols(nginx: Nginx): Promise<string[]> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const found = [...nginx.accessLog().matchAll(/"POST \/v1\/chat\/secure_completion (HTTP\/[\d.]+)"/g)].map((m) => m[1]!);
    if (found.length > 0 || Date.now() > deadline) return [...new Set(found)];
    await new Promise((r) => setTimeout(r, 20));
  }
}

let tls: TestCertificates;
beforeAll(() => {
  tls = makeTestCertificates();
});
afterAll(() => tls.cleanup());

describe('the echo model streaming through nginx (TLS, default buffering)', () => {
  let router: RouterProcess;
  let nginx: Nginx;
  let ignoring: Nginx; // the same, but nginx told to ignore the router's X-Accel-Buffering
  let http2: Nginx; // the same, offering HTTP/2 to clients
  beforeAll(async () => {
    router = await startRouterProcess(['--echo-delay', String(DELAY_MS)]);
    nginx = await startNginx({ router: router.url, tls });
    ignoring = await startNginx({ router: router.url, tls, extraDirectives: ['proxy_ignore_headers X-Accel-Buffering;'] });
    http2 = await startNginx({ router: router.url, tls, http2: true });
  });
  afterAll(async () => {
    await http2?.close();
    await ignoring?.close();
    await nginx?.close();
    await router?.close();
  });

  it.each([
    ['HTTP/1.1', false],
    ['HTTP/2', true],
  ])('delivers each word as the model makes it, not all at once at the end (client to nginx: %s)', async (_protocol, h2) => {
    const proxy = h2 ? http2 : nginx;
    const { result } = runClient(proxy.url, tls, { http2: h2 });
    const answer = await result;
    expect(answer.error, proxy.errorLog()).toBeUndefined();
    expect(await sealedRequestProtocols(proxy)).toEqual([h2 ? 'HTTP/2.0' : 'HTTP/1.1']);
    expect(answer.metadata).toMatchObject({ streamed: true, protocol: 2 });
    expect(answer.chunks.map((c) => c.content).join('')).toBe(`echo: ${WORDS}`);
    const times = contentTimes(answer);
    expect(times).toHaveLength(11);
    // Buffered, every word would arrive within a few ms, after the model's last. Through nginx they
    // keep the model's pace: spread over most of its second, a typical gap near its pause.
    expect(times.at(-1)! - times[0]!).toBeGreaterThan(MADE_OVER_MS / 2);
    expect(median(gaps(times))).toBeGreaterThan(DELAY_MS / 2);
    // create() resolved at the header event, long before the last word was made.
    expect(answer.createdAt!).toBeLessThan(times.at(-1)! - MADE_OVER_MS / 2);
  });

  it('arrives all at once when nginx ignores the router’s X-Accel-Buffering: the header is what makes it stream', async () => {
    const { result } = runClient(ignoring.url, tls);
    const answer = await result;
    expect(answer.error, ignoring.errorLog()).toBeUndefined();
    expect(answer.metadata).toMatchObject({ streamed: true, protocol: 2 });
    expect(answer.chunks.map((c) => c.content).join('')).toBe(`echo: ${WORDS}`);
    const times = contentTimes(answer);
    // nginx held the whole answer (a few KiB, less than its buffers) until the model had finished.
    expect(times.at(-1)! - times[0]!).toBeLessThan(MADE_OVER_MS / 4);
    expect(answer.createdAt!).toBeGreaterThan(MADE_OVER_MS * 0.9);
  });
});

describe('a client that stops, through nginx', () => {
  let upstream: ScriptedUpstream;
  let router: RouterProcess;
  let nginx: Nginx;
  let http2: Nginx;
  beforeAll(async () => {
    // An upstream that would talk forever: a word every 50 ms until its connection closes.
    upstream = await startUpstream(async (_request, res) => {
      startEvents(res);
      res.write(event(chunk({ role: 'assistant', content: '' })));
      while (!res.destroyed) {
        await new Promise((r) => setTimeout(r, 50));
        if (!res.destroyed) res.write(event(chunk({ content: 'w ' })));
      }
    });
    router = await startRouterProcess(['--upstream', upstream.url]);
    nginx = await startNginx({ router: router.url, tls });
    http2 = await startNginx({ router: router.url, tls, http2: true });
  });
  afterAll(async () => {
    await http2?.close();
    await nginx?.close();
    await router?.close();
    await upstream?.close();
  });

  // Either way the iteration stops at the third word: nothing is delivered after an abort, not even
  // a word that came in the same read of the body.
  it.each([
    ['aborts (stream.controller.abort())', 'abort', 'APIUserAbortError', /^w w w $/, false],
    ['breaks out of its loop', 'break', undefined, /^w w w $/, false],
    ['aborts over HTTP/2 (nginx gets the stream reset, not a closed connection)', 'abort', 'APIUserAbortError', /^w w w $/, true],
  ])('closes the upstream’s connection within seconds when it %s', async (_how, stop, error, words, h2) => {
    const proxy = h2 ? http2 : nginx;
    const before = upstream.requests.length;
    const client = runClient(proxy.url, tls, { stop: `${stop}:3`, http2: h2 });
    try {
      const answer = await client.result;
      expect(answer.error?.name).toBe(error);
      expect(answer.metadata).toMatchObject({ streamed: true, protocol: 2 });
      expect(answer.chunks.map((c) => c.content).join('')).toMatch(words);
      expect(upstream.requests).toHaveLength(before + 1);
      expect(upstream.requests[before]!.body.stream).toBe(true);
      // The client process is still alive: only its stop can have closed nginx's connection, and
      // nginx's closing the router's connection is what tells the router to stop the upstream.
      const request = upstream.requests[before]!;
      const deadline = Date.now() + 5_000;
      while (!request.closedEarly && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(request.closedEarly, `${proxy.errorLog()}\n${router.stderr()}`).toBe(true);
      expect(await sealedRequestProtocols(proxy)).toEqual([h2 ? 'HTTP/2.0' : 'HTTP/1.1']);
    } finally {
      await client.finish();
    }
  });
});

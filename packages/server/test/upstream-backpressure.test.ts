/**
 * A client that reads a streamed answer slowly slows the router's read of its upstream: nothing is
 * buffered without bound. The router runs as users run it (the built nomyo-server, its own process,
 * whose memory can be read), forwarding to a scripted OpenAI-compatible upstream on node:http that
 * writes its events as fast as its socket takes them, and counts what it got written.
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecureCompletionClient } from '@nomyo/core';
import { VECTOR_KEY_FILE } from './helpers.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

/** The events of the stream nobody reads: 200,000 chunks, 47 MiB of SSE. */
const TOTAL = 200_000;
/** How long the upstream's write must have waited for 'drain', nothing written, to count as blocked (a loaded machine's pauses are shorter). */
const BLOCKED_MS = 1000;
const MiB = 1024 * 1024;

/** What the upstream managed to write of one answer. */
interface Sending {
  events: number;
  bytes: number;
  /** Its last write returned false and 'drain' has not come yet. */
  waiting: boolean;
  /** It wrote every event and ended the response. */
  finished: boolean;
  /**
   * Its connection closed before it ended the response: the router cancelled the request. (Not a
   * count of the upstream's connections: undici opens a spare one after an aborted request.)
   */
  cancelled: boolean;
}

let upstream: http.Server;
let upstreamUrl: string;
const sendings: Sending[] = [];

/** The text of the `i`th chunk: its number, and some words. */
const content = (i: number) => `w${i} ${'lorem ipsum '.repeat(8)}`;

/** One chat.completion.chunk event, the last one with a finish reason. */
function event(model: string, i: number, last: boolean): string {
  const chunk = { id: 'up', object: 'chat.completion.chunk', created: 1, model, choices: [{ index: 0, delta: { content: content(i) }, finish_reason: last ? 'stop' : null }] };
  return `data: ${JSON.stringify(chunk)}\n\n`;
}

/** Streams as many events as the request's last message says, each written as soon as the socket takes it. */
async function answer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  let body = '';
  for await (const piece of req.setEncoding('utf8')) body += piece as string;
  const request = JSON.parse(body) as { model: string; stream?: boolean; messages: Array<{ content: string }> };
  expect(request.stream).toBe(true);
  const total = Number(request.messages.at(-1)!.content);
  const sending: Sending = { events: 0, bytes: 0, waiting: false, finished: false, cancelled: false };
  sendings.push(sending);
  const gone = new AbortController();
  req.socket.once('close', () => {
    sending.cancelled = !res.writableFinished;
    gone.abort();
  });
  res.writeHead(200, { 'Content-Type': 'text/event-stream' });
  for (let i = 0; i < total; i++) {
    if (res.destroyed) return;
    const text = event(request.model, i, i === total - 1);
    const more = res.write(text);
    sending.events++;
    sending.bytes += Buffer.byteLength(text);
    if (!more) {
      sending.waiting = true;
      // Until the socket takes more, or is gone.
      await once(res, 'drain', { signal: gone.signal }).catch(() => undefined);
      sending.waiting = false;
    }
  }
  res.end('data: [DONE]\n\n');
  sending.finished = true;
}

/** Resolves once `sending` is blocked (waiting for 'drain', nothing written for BLOCKED_MS) or finished. */
async function blockedOrFinished(sending: Sending, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last = -1;
  let since = performance.now();
  while (!sending.finished) {
    if (performance.now() > deadline) throw new Error(`the upstream never blocked nor finished: ${sending.events} events written`);
    if (sending.bytes !== last) {
      last = sending.bytes;
      since = performance.now();
    } else if (sending.waiting && performance.now() - since >= BLOCKED_MS) {
      return;
    }
    await sleep(50);
  }
}

beforeAll(async () => {
  upstream = http.createServer((req, res) => void answer(req, res).catch((err: unknown) => res.destroy(err as Error)));
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
});
afterAll(async () => {
  upstream.closeAllConnections();
  await new Promise((resolve) => upstream.close(resolve));
});

describe('a client that stops reading a stream forwarded from an upstream', () => {
  let router: ChildProcessWithoutNullStreams | undefined;
  afterAll(() => {
    if (router && router.exitCode === null && router.signalCode === null) router.kill('SIGKILL');
  });

  it('blocks the upstream after a bounded amount, without growing the router; reading resumes it, going away cancels it', async () => {
    router = spawn(process.execPath, [cli, '--port', '0', '--key-file', VECTOR_KEY_FILE, '--quiet', '--upstream', upstreamUrl]);
    const exit = once(router, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const [line] = (await once(createInterface({ input: router.stdout }), 'line')) as [string];
    const url = line.slice('listening on '.length);
    const pid = router.pid!;
    // Resident memory of the router's process, in bytes (ps: Linux and macOS alike).
    const rss = () => Number(execFileSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' }).trim()) * 1024;
    const client = new SecureCompletionClient({ routerUrl: url, allowHttp: true });
    const ask = (events: number) => client.streamSecureRequest({ model: 'm', messages: [{ role: 'user', content: String(events) }] });

    // A short stream read to its end: the path works, and the router has its working size.
    let text = '';
    for await (const c of await ask(2000)) text += c.choices[0]?.delta.content ?? '';
    expect(text).toBe(Array.from({ length: 2000 }, (_, i) => content(i)).join(''));
    expect(sendings.shift()).toMatchObject({ events: 2000, finished: true, cancelled: false });
    const before = rss();

    // The headers and the first records, then nothing read.
    const stream = await ask(TOTAL);
    expect(stream._metadata.streamed).toBe(true);
    const chunks = stream[Symbol.asyncIterator]();
    let read = 0;
    const readOne = async () => {
      const next = await chunks.next();
      expect(next.done).toBe(false);
      expect(next.value!.choices[0]?.delta.content).toBe(content(read++));
    };
    for (let i = 0; i < 5; i++) await readOne();
    const sending = sendings[0]!;
    await blockedOrFinished(sending);
    const stalled = { ...sending };
    const grown = rss() - before;
    const whole = Array.from({ length: TOTAL }, (_, i) => Buffer.byteLength(event('m', i, false))).reduce((a, b) => a + b);
    console.info(`the upstream stopped after ${stalled.events} of ${TOTAL} events, ${(stalled.bytes / MiB).toFixed(1)} of ${(whole / MiB).toFixed(1)} MiB; router RSS ${(grown / MiB).toFixed(1)} MiB more`);
    // Blocked on its socket, a small part of the answer written: what the sockets' buffers hold
    // (some 6 MiB on loopback), not the whole answer read ahead into the router (47 MiB, which
    // grew it by 40 to 60 MiB when it was).
    expect(stalled).toMatchObject({ waiting: true, finished: false, cancelled: false });
    expect(stalled.bytes).toBeLessThan(whole / 3);
    expect(grown).toBeLessThan(24 * MiB);

    // Reading again pulls the upstream again, every chunk in order.
    while (sending.events < stalled.events + 5000) await readOne();
    expect(sending.finished).toBe(false);

    // Going away cancels the upstream's request: its connection closed, the answer unfinished.
    stream.controller.abort();
    await chunks.next().catch(() => undefined);
    await expect.poll(() => sending.cancelled, { timeout: 5000 }).toBe(true);
    expect(sending.finished).toBe(false);

    // Nothing left in flight: the router drains at once and exits 0.
    router.kill('SIGTERM');
    const t0 = performance.now();
    expect(await exit).toEqual([0, null]);
    expect(performance.now() - t0).toBeLessThan(3000);
  });
});

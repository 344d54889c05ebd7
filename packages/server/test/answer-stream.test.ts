/**
 * The router writing a streamed answer, over real HTTP with @nomyo/core's client: a heartbeat in
 * every silence of the model, backpressure all the way to the model (a client that stops reading
 * stops the model, and nothing piles up in the router), a client that goes away stops the model,
 * and v1 and whole-answer requests never stream.
 */
import { Server } from 'node:http';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SecureCompletionClient, StreamTruncatedError, type ChatCompletionChunk } from '@nomyo/core';
import { StreamSealer } from '@nomyo/core/protocol';
import { startServer, type CompletionModel, type NomyoServer, type ServerOptions } from '../src/index.js';
import { VECTOR_KEY_FILE } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CHAT = { model: 'm', messages: [{ role: 'user', content: 'stream to me' }] };
const chunkOf = (content: string) => ({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: null }] });

let server: NomyoServer | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await server?.close();
  server = undefined;
});

/** The router's side of each connection, as it comes (Server.prototype.emit watched until the test ends). */
function routerSockets(): Socket[] {
  const sockets: Socket[] = [];
  const emit = Server.prototype.emit;
  vi.spyOn(Server.prototype, 'emit').mockImplementation(function (this: Server, name: string | symbol, ...args: unknown[]) {
    if (name === 'connection') sockets.push(args[0] as Socket);
    return Reflect.apply(emit, this, [name, ...args]) as boolean;
  });
  return sockets;
}

/** What a socket holds back: corked, and bytes not yet handed to the kernel. */
interface Holding {
  corked: number;
  queued: number;
}
const holding = (s: Socket): Holding => ({ corked: s.writableCorked, queued: s.writableLength });
const NOTHING_HELD: Holding = { corked: 0, queued: 0 };

/** What the router logged at level warn or error. */
const problems: string[] = [];

/** A router with `model`, its requests recorded, and a client for it. */
async function routerWith(model: CompletionModel, options: ServerOptions = {}): Promise<SecureCompletionClient> {
  problems.length = 0;
  server = await startServer({ ...options, keyFile: VECTOR_KEY_FILE, model, recordRequests: true, onLog: (e) => void (e.level !== 'info' && problems.push(`${e.level} ${e.message}`)) });
  return new SecureCompletionClient({ routerUrl: server.url, allowHttp: true });
}

/** A client whose fetch keeps a copy of each response body as text, as it arrives. */
function recordingClient(url: string, bodies: string[]): SecureCompletionClient {
  return new SecureCompletionClient({
    routerUrl: url,
    allowHttp: true,
    fetch: async (input, init) => {
      const res = await fetch(input, init);
      if (!res.body) return res;
      const [mine, theirs] = res.body.tee();
      const index = bodies.push('') - 1;
      void (async () => {
        const decoder = new TextDecoder();
        const reader = theirs.getReader();
        for (let r = await reader.read(); !r.done; r = await reader.read()) bodies[index] += decoder.decode(r.value, { stream: true });
      })();
      return new Response(mine, res);
    },
  });
}

describe('a streamed answer, written by the router', () => {
  it('sends a heartbeat comment in every silence of the model, and none while it talks', async () => {
    server = await startServer({
      keyFile: VECTOR_KEY_FILE,
      streamHeartbeatMs: 80,
      model: async function* () {
        yield chunkOf('before ');
        await sleep(450);
        yield chunkOf('after');
      },
    });
    const bodies: string[] = [];
    const stream = await recordingClient(server.url, bodies).streamSecureRequest(CHAT);
    const contents: string[] = [];
    for await (const c of stream) contents.push(c.choices[0]!.delta.content!);
    expect(contents.join('')).toBe('before after');
    const body = bodies.at(-1)!;
    const beats = body.split(': keep-alive\n\n').length - 1;
    expect(beats).toBeGreaterThanOrEqual(3);
    expect(beats).toBeLessThanOrEqual(7);
    // All of them in the silence: between the first record and the second.
    const events = body.split('\n\n');
    expect(events.slice(0, 2).some((e) => e.startsWith(':'))).toBe(false);
    expect(events.slice(-3).some((e) => e.startsWith(':'))).toBe(false);
  });

  it('a client that stops reading stops the model: nothing piles up in the router, and reading again resumes it', async () => {
    let made = 0;
    let aborted = false;
    const big = 'x'.repeat(900); // records of 1 KiB: the socket's buffers fill with a few thousand
    const client = await routerWith(async function* (_request, ctx) {
      ctx.signal.addEventListener('abort', () => (aborted = true));
      for (;;) {
        made++;
        yield chunkOf(big);
      }
    });
    const before = process.memoryUsage();
    const stream = await client.streamSecureRequest(CHAT);
    // Nobody reads: the model is asked for chunks only while the sockets' buffers have room.
    let last = -1;
    for (let i = 0; i < 100 && made !== last; i++) {
      last = made;
      await sleep(150);
    }
    expect(made).toBe(last);
    const stalled = made;
    expect(stalled).toBeLessThan(10_000); // a few MiB of socket buffers (some 2,700 records here), not an unbounded queue
    const grown = process.memoryUsage();
    expect(grown.rss - before.rss).toBeLessThan(64 * 1024 * 1024);
    await sleep(300);
    expect(made).toBe(stalled);
    // Reading again pulls the model again.
    const iterator = stream[Symbol.asyncIterator]();
    for (let i = 0; i < stalled + 100; i++) await iterator.next();
    expect(made).toBeGreaterThan(stalled);
    // Going away stops it.
    stream.controller.abort();
    await iterator.next().catch(() => undefined);
    await expect.poll(() => aborted, { timeout: 5000 }).toBe(true);
    const stopped = made;
    await sleep(200);
    expect(made - stopped).toBeLessThanOrEqual(1);
  });

  it('a client that takes nothing for streamStallTimeoutMs is cut off: its connection closed, the model stopped, a warning logged', async () => {
    let made = 0;
    let aborted = false;
    const big = 'x'.repeat(900);
    const client = await routerWith(
      async function* (_request, ctx) {
        ctx.signal.addEventListener('abort', () => (aborted = true));
        for (;;) {
          made++;
          yield chunkOf(big);
        }
      },
      { streamStallTimeoutMs: 400 },
    );
    const stream = await client.streamSecureRequest(CHAT);
    // Nobody reads: once the sockets' buffers are full, 400 ms later the router gives up on the client.
    await expect.poll(() => aborted, { timeout: 15_000 }).toBe(true);
    expect(problems).toEqual(["warn a stream's client took nothing for 400 ms: its connection was closed"]);
    const stopped = made;
    // What the sockets held is still delivered; then the answer is cut short, never ended normally.
    let read = 0;
    const err = await (async () => {
      for await (const _chunk of stream) read++;
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StreamTruncatedError);
    expect(read).toBeGreaterThan(0);
    expect(read).toBeLessThanOrEqual(stopped);
    expect(server!.requests.at(-1)!.response?.outcome).toBe('aborted');
  });

  it('a client that reads slowly but steadily, within the stall limit, is never cut off', async () => {
    const client = await routerWith(
      async function* () {
        for (let i = 0; i < 3000; i++) yield chunkOf(`${'x'.repeat(900)}${i}`);
        yield { ...chunkOf(''), choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] };
      },
      { streamStallTimeoutMs: 400 },
    );
    let read = 0;
    for await (const _chunk of await client.streamSecureRequest(CHAT)) {
      // A pause every 500 records, under the limit each: the sockets fill, then drain.
      if (++read % 500 === 0) await sleep(250);
    }
    expect(read).toBe(3001);
    expect(problems).toEqual([]);
  });

  it('a client that disconnects stops the model; the router records the stream as aborted, and logs no error for it', async () => {
    let aborted = false;
    const client = await routerWith(async function* (_request, ctx) {
      for (let i = 0; ; i++) {
        // A pause the disconnect cuts short, as the echo model's is: it throws the abort.
        await sleep(20);
        if (ctx.signal.aborted) {
          aborted = true;
          throw ctx.signal.reason;
        }
        yield chunkOf(`${i} `);
      }
    });
    const stream = await client.streamSecureRequest(CHAT);
    let n = 0;
    for await (const _ of stream as AsyncIterable<ChatCompletionChunk>) if (++n === 3) break;
    await expect.poll(() => aborted, { timeout: 5000 }).toBe(true);
    await expect.poll(() => server!.requests.at(-1)?.response?.outcome, { timeout: 5000 }).toBe('aborted');
    const response = server!.requests.at(-1)!.response!;
    expect(response.status).toBe(200);
    // The record holds the events sent before the disconnect, and no final record.
    const sent = new TextDecoder().decode(response.body);
    expect(sent).toMatch(/^event: nomyo-stream\n/);
    expect(sent).not.toContain('nomyo-final');
    expect(problems.filter((p) => p.startsWith('error'))).toEqual([]);
  });

  it('the model is told to stream only when a v2 request asks to: v1 requests and plain v2 requests never stream', async () => {
    const seen: unknown[] = [];
    const client = await routerWith((request) => {
      seen.push(request.stream);
      return { id: 'x', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }] };
    });
    await client.sendSecureRequest(CHAT);
    await client.streamSecureRequest(CHAT);
    const v1 = new SecureCompletionClient({ routerUrl: server!.url, allowHttp: true, protocol: 1, keySize: 2048 });
    const old = await v1.streamSecureRequest(CHAT);
    expect(old._metadata).toMatchObject({ protocol: 1, streamed: false });
    expect(seen).toEqual([undefined, true, undefined]);
  });

  it('a model that streams to a request that did not ask for a stream is a bug: 500, no stream', async () => {
    const client = await routerWith(async function* () {
      yield chunkOf('nobody asked');
    });
    await expect(client.sendSecureRequest(CHAT)).rejects.toMatchObject({ status: 500 });
  });

  it('a chunk that is not a chat.completion.chunk ends the stream with a sealed 502, after the chunks before it, and closes the model', async () => {
    let closed = false;
    const client = await routerWith(async function* () {
      try {
        yield chunkOf('fine ');
        yield { object: 'something else' };
        yield chunkOf('never asked for');
      } finally {
        closed = true;
      }
    });
    const contents: string[] = [];
    const err = await (async () => {
      for await (const c of await client.streamSecureRequest(CHAT)) contents.push(c.choices[0]!.delta.content!);
    })().catch((e: unknown) => e);
    expect(contents).toEqual(['fine ']);
    expect(err).toMatchObject({ status: 502, detail: 'the inference backend sent a malformed chunk', sealed: true });
    expect(closed).toBe(true);
  });

  it('the headers and the header event have left the router before the model is asked for its first chunk', async () => {
    const sockets = routerSockets();
    let held: Holding[] = [];
    const client = await routerWith(async function* () {
      // Whatever the socket still holds here would wait for this chunk's record (and the model's pace).
      held = sockets.map(holding);
      yield chunkOf('first');
    });
    const contents: string[] = [];
    for await (const c of await client.streamSecureRequest(CHAT)) contents.push(c.choices[0]!.delta.content!);
    expect(contents).toEqual(['first']);
    expect(held.length).toBeGreaterThan(0);
    expect(held).toEqual(held.map(() => NOTHING_HELD));
  });

  it('the next record\'s cipher is asked for once a turn\'s records have left the socket, not on their way', async () => {
    const sockets = routerSockets();
    const asked: Holding[][] = [];
    const prepareNext = vi.spyOn(StreamSealer.prototype, 'prepareNext').mockImplementation(function (this: StreamSealer) {
      asked.push(sockets.map(holding));
    });
    try {
      const client = await routerWith(async function* () {
        for (const word of ['one ', 'two ', 'three']) {
          yield chunkOf(word);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      });
      const contents: string[] = [];
      for await (const c of await client.streamSecureRequest(CHAT)) contents.push(c.choices[0]!.delta.content!);
      expect(contents).toEqual(['one ', 'two ', 'three']);
    } finally {
      prepareNext.mockRestore();
    }
    // Once for each of the three turns with a record (the header's turn has its cipher made with the keys).
    expect(asked).toHaveLength(3);
    expect(asked.flat()).toEqual(asked.flat().map(() => NOTHING_HELD));
  });
});

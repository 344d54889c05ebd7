/**
 * The router writing a streamed answer, over real HTTP with @nomyo/core's client: a heartbeat in
 * every silence of the model (15 s by default) and none left armed once the stream is over or its
 * client gone, backpressure all the way to the model (a client that stops reading stops the model,
 * and nothing piles up in the router), a client that goes away stops the model, an upstream's chunk
 * too long to be a record, or nested deeper than a client takes, refused as the upstream's fault,
 * records padded to multiples of 128 bytes, and v1 and whole-answer requests never stream; how a
 * stream ended (complete, error, aborted) in its request's log line, and a stall's warning matched
 * with that line.
 */
import http, { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SecureCompletionClient, StreamTruncatedError, type ChatCompletionChunk } from '@nomyo/core';
import { MAX_STREAM_RECORD_BYTES, StreamSealer } from '@nomyo/core/protocol';
import { HttpError, startServer, type CompletionModel, type LogEvent, type NomyoServer, type ServerOptions } from '../src/index.js';
import { formatLogEvent } from '../src/log-format.js';
import { MODEL_ABORT_GRACE_MS } from '../src/model-abort.js';
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

/** What the router logged at level warn or error, but for the requests' own lines (in `events`). */
const problems: string[] = [];
/** Every event the router logged. */
const events: LogEvent[] = [];

/** A router with `model` (none: the options' upstream, or the echo model), its requests recorded, and a client for it. */
async function routerWith(model: CompletionModel | undefined, options: ServerOptions = {}): Promise<SecureCompletionClient> {
  problems.length = 0;
  events.length = 0;
  const onLog = (e: LogEvent) => {
    events.push(e);
    if (e.level !== 'info' && !e.request) problems.push(`${e.level} ${e.message}`);
  };
  server = await startServer({ ...options, keyFile: VECTOR_KEY_FILE, model, recordRequests: true, onLog });
  return new SecureCompletionClient({ routerUrl: server.url, allowHttp: true });
}

/** The `n`th line the router logged for a secure completion (once it has), and the request's record. */
function requestLine(n: number): LogEvent | undefined {
  return events.filter((e) => e.request?.path === '/v1/chat/secure_completion')[n];
}
/** The fields of the line logged (not a request's) whose message begins with `message`. */
const fieldsOf = (message: string) => events.find((e) => !e.request && e.message.startsWith(message))?.fields;
/** What a line logged of the `n`th secure completion carries to match it with that request's line. */
function requestFields(n: number): { seq: unknown; payload_id: unknown } {
  const line = requestLine(n)!;
  return { seq: line.fields!.seq, payload_id: line.request!.payload_id };
}
const recordOf = (line: LogEvent) => server!.requests.find((r) => r.seq === line.fields?.seq)!;

/**
 * The heartbeat timers of the router's stream writer (EventSink's #arm, in answer-stream.ts): those
 * armed (neither fired nor cleared yet), and the delay of each one armed. Node's setTimeout is
 * watched until the test ends.
 */
function watchHeartbeats(): { armed: Set<unknown>; delays: number[] } {
  const armed = new Set<unknown>();
  const delays: number[] = [];
  const { setTimeout: set, clearTimeout: clear } = globalThis;
  vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    if (!/#arm \(.*answer-stream\.ts/.test(new Error().stack ?? '')) return set(fn, ms, ...args);
    const timer = set(() => {
      armed.delete(timer);
      fn(...args);
    }, ms);
    armed.add(timer);
    delays.push(ms ?? 0);
    return timer;
  }) as typeof setTimeout);
  vi.spyOn(globalThis, 'clearTimeout').mockImplementation((timer) => {
    armed.delete(timer);
    clear(timer);
  });
  return { armed, delays };
}

/** A stream's chunks' contents, and the error it ends with (or fails to start with). */
async function streamEnd(opening: Promise<AsyncIterable<ChatCompletionChunk>>): Promise<{ contents: string[]; err: unknown }> {
  const contents: string[] = [];
  try {
    for await (const c of await opening) contents.push(c.choices[0]?.delta.content ?? '');
    return { contents, err: undefined };
  } catch (err) {
    return { contents, err };
  }
}

/** An OpenAI-compatible upstream on loopback that streams `events` (SSE `data:` payloads) to every request. */
async function sseUpstream(events: unknown[]): Promise<{ url: string; close(): Promise<void> }> {
  const upstream = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      for (const event of events) res.write(`data: ${typeof event === 'string' ? event : JSON.stringify(event)}\n\n`);
      res.end();
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`,
    close: async () => {
      upstream.closeAllConnections();
      await new Promise((resolve) => upstream.close(resolve));
    },
  };
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

  it('a client that stops reading near the end is cut off too: the final record waiting in the socket does not hold the request for good', async () => {
    const sockets = routerSockets();
    // What the router's socket holds back, the kernel's buffers full (not this turn's corked records).
    const holdsBack = () => sockets.some((s) => s.writableCorked === 0 && s.writableLength > 0);
    const client = await routerWith(
      async function* () {
        // Records small enough that no write is refused (under Node's 16 KiB mark): the wait is at the end.
        while (!holdsBack()) {
          yield chunkOf('x'.repeat(8000));
          await new Promise((resolve) => setImmediate(resolve));
        }
      },
      { streamStallTimeoutMs: 400 },
    );
    const stream = await client.streamSecureRequest(CHAT);
    await expect.poll(() => problems, { timeout: 15_000 }).toEqual(["warn a stream's client took nothing for 400 ms: its connection was closed"]);
    // No complete answer left: the request's record says so.
    await expect.poll(() => server!.requests.at(-1)?.response?.outcome, { timeout: 5000 }).toBe('aborted');
    const err = await (async () => {
      for await (const _chunk of stream);
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StreamTruncatedError);
  });

  it('a final record still in the socket when the drain closes the connection is no complete answer: the stream is counted aborted', async () => {
    const sockets = routerSockets();
    const holdsBack = () => sockets.some((s) => s.writableCorked === 0 && s.writableLength > 0);
    const client = await routerWith(
      async function* (_request, ctx) {
        while (!holdsBack()) {
          yield chunkOf('x'.repeat(8000));
          await new Promise((resolve) => setImmediate(resolve));
        }
        // Heeds its signal: at the deadline it ends, and the final record goes behind what the socket holds.
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
      },
      { drainTimeoutMs: 100 },
    );
    const stream = await client.streamSecureRequest(CHAT);
    await expect.poll(holdsBack, { timeout: 15_000 }).toBe(true);
    // The drain's last second ends with every connection closed, the final record never taken.
    await server!.close();
    server = undefined;
    const line = () => events.find((e) => e.request?.path === '/v1/chat/secure_completion');
    await expect.poll(() => line()?.request?.stream_outcome).toBe('aborted');
    expect(line()?.message).toBe('POST /v1/chat/secure_completion 200 aborted');
    const err = await (async () => {
      for await (const _chunk of stream);
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StreamTruncatedError);
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

  it('an upstream chunk over 1 MiB is the upstream\'s fault: a sealed 502 after the chunks before it, no internal error', async () => {
    // Two UTF-8 bytes a character: its line is short enough to read, its JSON over 1 MiB.
    const huge = 'é'.repeat(Math.ceil(MAX_STREAM_RECORD_BYTES * 0.55));
    const upstream = await sseUpstream([chunkOf('fine '), chunkOf(huge), { ...chunkOf(''), choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }, '[DONE]']);
    try {
      const client = await routerWith(undefined, { upstream: upstream.url });
      const { contents, err } = await streamEnd(client.streamSecureRequest(CHAT));
      expect(contents).toEqual(['fine ']);
      expect(err).toMatchObject({ status: 502, detail: 'the inference backend sent a chunk over 1 MiB', sealed: true });
      expect(problems).toEqual([]); // onInternalError would log "internal error in a stream"
    } finally {
      await upstream.close();
    }
  });

  it('an upstream chunk nested deeper than a client takes (64) is the upstream\'s fault: a sealed 502 after the chunks before it', async () => {
    // The chunk, its choices and a choice are 3 levels: `logprobs` holds the rest.
    const nestedTo = (depth: number, content: string) => ({ ...chunkOf(content), choices: [{ index: 0, delta: { content }, finish_reason: null, logprobs: JSON.parse('['.repeat(depth - 3) + ']'.repeat(depth - 3)) as unknown }] });
    const upstream = await sseUpstream([nestedTo(64, 'fine '), nestedTo(65, 'deep'), '[DONE]']);
    try {
      const client = await routerWith(undefined, { upstream: upstream.url });
      const { contents, err } = await streamEnd(client.streamSecureRequest(CHAT));
      expect(contents).toEqual(['fine ']);
      expect(err).toMatchObject({ status: 502, detail: 'the inference backend sent a chunk nested deeper than 64', sealed: true });
      expect(problems).toEqual([]);
    } finally {
      await upstream.close();
    }
  });

  it('a custom model\'s chunk nested deeper than a client takes is refused the same way, not left to the client to take for an attack', async () => {
    const nestedTo = (depth: number, content: string) => ({ ...chunkOf(content), choices: [{ index: 0, delta: { content }, finish_reason: null, logprobs: JSON.parse('['.repeat(depth - 3) + ']'.repeat(depth - 3)) as unknown }] });
    const client = await routerWith(async function* () {
      yield nestedTo(64, 'fine ');
      yield nestedTo(65, 'deep');
    });
    const { contents, err } = await streamEnd(client.streamSecureRequest(CHAT));
    expect(contents).toEqual(['fine ']);
    expect(err).toMatchObject({ status: 502, detail: 'the inference backend sent a chunk nested deeper than 64', sealed: true });
    expect(problems).toEqual([]);
  });

  it('a model whose chunks cannot even be asked for ends the stream with a sealed 500, its heartbeat stopped with it', async () => {
    const heartbeats = watchHeartbeats().armed;
    const client = await routerWith(() => ({ [Symbol.asyncIterator]: () => { throw new Error('no chunks'); } }), { streamHeartbeatMs: 1000 });
    const { err } = await streamEnd(client.streamSecureRequest(CHAT));
    // The request is over: no heartbeat is left to wake for it.
    expect(heartbeats.size).toBe(0);
    expect(err).toMatchObject({ status: 500, detail: 'internal server error', sealed: true });
    expect(problems).toEqual(['error internal error in a stream (Error)']);
    expect(fieldsOf('internal error in a stream')).toEqual(requestFields(0));
  });

  it('a model deaf to its signal is left behind once the client has gone: the request ends, aborted and warned of, while the model still hangs, no heartbeat stays armed, and the model is stopped once it wakes', async () => {
    const heartbeats = watchHeartbeats().armed;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let stopped = false;
    const client = await routerWith(
      async function* () {
        try {
          yield chunkOf('first');
          await released; // deaf to ctx.signal
          yield chunkOf('late');
          yield chunkOf('later');
        } finally {
          stopped = true;
        }
      },
      { streamHeartbeatMs: 20 },
    );
    const stream = await client.streamSecureRequest(CHAT);
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next();
    expect(heartbeats.size).toBe(1);
    stream.controller.abort();
    await iterator.next().catch(() => undefined);
    try {
      // The model has not woken: the request is over all the same (its log line, its place, its metrics).
      await expect.poll(() => server!.requests.at(-1)?.response?.outcome, { timeout: 3000 }).toBe('aborted');
      expect(stopped).toBe(false);
      expect(heartbeats.size).toBe(0);
      expect(problems).toEqual([`warn the model went on ${MODEL_ABORT_GRACE_MS} ms after its request was aborted: the request ended without it`]);
      // Matched with its request's line: seq= in text, payload_id in JSON.
      expect(fieldsOf('the model went on')).toEqual(requestFields(0));
    } finally {
      release();
    }
    // Woken, it meets the return() it was sent: its chunk goes nowhere, nothing more is asked of it.
    await expect.poll(() => stopped).toBe(true);
    expect(problems).toHaveLength(1);
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

describe("how a stream ended, in its request's log line", () => {
  const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(' ');
  const chat = (content: string) => ({ model: 'm', messages: [{ role: 'user', content }] });

  it('a stream cut off by its client is a warning that says so ("200 aborted"), a complete one is not; ms= is the duration, as in JSON, for streams and whole answers alike', async () => {
    const client = await routerWith(undefined, { echoDelayMs: 20 });
    // Complete: ten words, 20 ms apart.
    for await (const _ of await client.streamSecureRequest(chat(words(10))));
    await expect.poll(() => requestLine(0)).toBeDefined();
    const complete = requestLine(0)!;
    expect(complete).toMatchObject({ level: 'info', message: 'POST /v1/chat/secure_completion 200', request: { streamed: true, stream_outcome: 'complete', status: 200 } });
    // The request's duration, not the time to its headers (X-Processing-Time-Ms).
    const { duration_ms } = complete.request!;
    expect(complete.fields!.ms).toBe(duration_ms);
    expect(duration_ms).toBeGreaterThan(150);
    expect(recordOf(complete).response!.processingMs).toBeLessThan(duration_ms);
    expect(formatLogEvent(complete, 'text')).toBe(`info POST /v1/chat/secure_completion 200 seq=${complete.fields!.seq} status=200 ms=${duration_ms}\n`);

    // Cut off: the client leaves after three chunks.
    let n = 0;
    for await (const _ of await client.streamSecureRequest(chat(words(100)))) if (++n === 3) break;
    await expect.poll(() => requestLine(1)).toBeDefined();
    const aborted = requestLine(1)!;
    expect(aborted).toMatchObject({ level: 'warn', message: 'POST /v1/chat/secure_completion 200 aborted', fields: { status: 200 }, request: { streamed: true, stream_outcome: 'aborted', status: 200 } });
    expect(aborted.fields!.ms).toBe(aborted.request!.duration_ms);
    expect(JSON.parse(formatLogEvent(aborted, 'json'))).toMatchObject({ level: 'warn', streamed: true, stream_outcome: 'aborted', status: 200 });
    expect(recordOf(aborted).response!.outcome).toBe('aborted');

    // A whole answer: no stream to tell of; its ms= is its duration too.
    await client.sendSecureRequest(chat('whole'));
    await expect.poll(() => requestLine(2)).toBeDefined();
    const whole = requestLine(2)!;
    expect(whole).toMatchObject({ level: 'info', message: 'POST /v1/chat/secure_completion 200', request: { streamed: false, stream_outcome: null } });
    expect(whole.fields!.ms).toBe(whole.request!.duration_ms);
  });

  it('a stream ended by an error in its final record says so ("200 error"), and its record is still answered', async () => {
    const client = await routerWith(async function* () {
      yield chunkOf('fine ');
      throw new HttpError(502, 'the inference backend broke off');
    });
    const { contents, err } = await streamEnd(client.streamSecureRequest(CHAT));
    expect(contents).toEqual(['fine ']);
    expect(err).toMatchObject({ status: 502, sealed: true });
    await expect.poll(() => requestLine(0)).toBeDefined();
    expect(requestLine(0)).toMatchObject({ level: 'warn', message: 'POST /v1/chat/secure_completion 200 error', request: { stream_outcome: 'error', status: 200 } });
    expect(recordOf(requestLine(0)!).response!.outcome).toBe('answered');
  });

  it("a stall's warning carries its request's seq and payload id, which match it with the request's line, in text and JSON", async () => {
    const client = await routerWith(
      async function* () {
        for (;;) yield chunkOf('x'.repeat(900));
      },
      { streamStallTimeoutMs: 400 },
    );
    const payloadId = crypto.randomUUID();
    const stream = await client.streamSecureRequest(CHAT, payloadId);
    await expect.poll(() => requestLine(0), { timeout: 15_000 }).toBeDefined();
    const line = requestLine(0)!;
    expect(line).toMatchObject({ level: 'warn', message: 'POST /v1/chat/secure_completion 200 aborted', request: { payload_id: payloadId, stream_outcome: 'aborted' } });
    const { seq } = line.fields!;
    const stall = events.find((e) => e.message.startsWith("a stream's client took nothing"))!;
    expect(stall).toMatchObject({ level: 'warn', fields: { seq, payload_id: payloadId } });
    // Text: the seq= of its request's line. JSON: the payload_id of its request's line.
    expect(formatLogEvent(stall, 'text')).toBe(`warn a stream's client took nothing for 400 ms: its connection was closed seq=${seq} payload_id=${payloadId}\n`);
    expect(formatLogEvent(line, 'text')).toContain(` seq=${seq} `);
    expect(JSON.parse(formatLogEvent(stall, 'json'))).toMatchObject({ level: 'warn', payload_id: JSON.parse(formatLogEvent(line, 'json')).payload_id });
    await streamEnd(Promise.resolve(stream));
  });
});

describe('the numbers a user of the router relies on', () => {
  it('every record is padded to the next multiple of 128 bytes and sealed with a 16-byte tag (docs/protocol.md, "Streamed answers")', async () => {
    const overhead = JSON.stringify(chunkOf('')).length;
    // Chunks whose JSON is 200, 256, 257 and 300 bytes (ASCII): 256, 256, 384 and 384 bytes padded.
    const sizes = [200, 256, 257, 300];
    const client = await routerWith(async function* () {
      for (const size of sizes) yield chunkOf('x'.repeat(size - overhead));
    });
    const contents: string[] = [];
    for await (const c of await client.streamSecureRequest(CHAT)) contents.push(c.choices[0]!.delta.content!);
    expect(contents.map((c) => c.length + overhead)).toEqual(sizes);
    const events = new TextDecoder().decode(server!.requests.at(-1)!.response!.body).split('\n\n').filter((e) => e !== '');
    const sealed = events.slice(1).map((e) => Buffer.from(e.replace(/^(event: .*\n)?data: /, ''), 'base64').length);
    // The four records, then the final one: padding alone for a normal end.
    expect(sealed).toEqual([256 + 16, 256 + 16, 384 + 16, 384 + 16, 128 + 16]);
  });

  it('a heartbeat is due after 15 s of silence unless streamHeartbeatMs says otherwise', async () => {
    const { delays } = watchHeartbeats();
    const client = await routerWith(async function* () {
      yield chunkOf('one');
    });
    for await (const _ of await client.streamSecureRequest(CHAT));
    expect(delays).toEqual([15_000]);
  });
});

/**
 * close() drains: no new connections, 503 with Connection: close for a new request on a kept-alive
 * one (and "draining" from /healthz), in-flight streams finish; one that outlasts the drain timeout
 * ends with a sealed final record that carries "router shutting down", which @nomyo/core's client
 * opens and throws after the chunks before it.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { APIError, SecureCompletionClient, StreamTruncatedError, type ChatCompletionChunk } from '@nomyo/core';
import { startServer, type LogEvent, type NomyoServer } from '../src/index.js';
import { VECTOR_KEY_FILE } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let server: NomyoServer | undefined;
afterEach(async () => {
  await server?.close({ drainTimeoutMs: 0 });
  server = undefined;
});

const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(' ');

/** A raw connection that has sent the first half of a request's headers: kept, not idle, through the drain's start. */
async function halfSentRequest(port: number, path: string): Promise<{ finish(): Promise<string> }> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n`);
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return {
    async finish() {
      socket.write('\r\n');
      await closed; // Connection: close: the router hangs up after answering
      return text;
    },
  };
}

function refused(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

/** The stream's text, and the error it ended with, if any. */
async function drink(stream: AsyncIterable<ChatCompletionChunk>, text: string[]): Promise<unknown> {
  try {
    for await (const chunk of stream) text.push(chunk.choices[0]?.delta.content ?? '');
    return undefined;
  } catch (err) {
    return err;
  }
}

describe('close(): a graceful drain', () => {
  it('refuses new connections, answers 503 on kept-alive ones, finishes streams within the timeout and seals "router shutting down" into the one that outlasts it', async () => {
    server = await startServer({ keyFile: VECTOR_KEY_FILE, echoDelayMs: 100, drainTimeoutMs: 1500 });
    const port = server.port;
    const client = new SecureCompletionClient({ routerUrl: server.url, allowHttp: true });
    // ~0.6 s of words, and ~4 s of them.
    const short = await client.streamSecureRequest({ model: 'm', messages: [{ role: 'user', content: words(5) }] });
    const long = await client.streamSecureRequest({ model: 'm', messages: [{ role: 'user', content: words(40) }] });
    const shortText: string[] = [];
    const longText: string[] = [];
    const shortEnd = drink(short, shortText);
    const longEnd = drink(long, longText);
    const health = await halfSentRequest(port, '/healthz');
    const keyFetch = await halfSentRequest(port, '/pki/public_key');
    await expect.poll(() => longText.length).toBeGreaterThan(1);

    const t0 = performance.now();
    const closing = server.close();
    expect(server.draining).toBe(true);
    expect(await refused(port)).toBe('ECONNREFUSED');

    const healthReply = await health.finish();
    expect(healthReply).toMatch(/^HTTP\/1\.1 503 /);
    expect(healthReply).toMatch(/\r\nConnection: close\r\n/i);
    expect(JSON.parse(healthReply.slice(healthReply.indexOf('\r\n\r\n') + 4))).toEqual({ status: 'draining', protocols: [1, 2], key_fingerprint: server.fingerprint, accepted_key_fingerprints: [] });
    const keyReply = await keyFetch.finish();
    expect(keyReply).toMatch(/^HTTP\/1\.1 503 /);
    expect(keyReply).toMatch(/\r\nConnection: close\r\n/i);
    expect(keyReply).toMatch(/\r\nRetry-After: 1\r\n/i);
    expect(keyReply.endsWith('{"detail":"router shutting down"}')).toBe(true);

    // The short stream finishes during the drain, every chunk of it.
    expect(await shortEnd).toBeUndefined();
    expect(shortText.join('')).toBe(`echo: ${words(5)}`);
    expect(performance.now() - t0).toBeLessThan(1500);

    // The long one ends at the deadline with the sealed error, after the chunks before it.
    const err = await longEnd;
    expect(err).toBeInstanceOf(APIError);
    expect(err).toMatchObject({ status: 503, detail: 'router shutting down', sealed: true });
    const longSoFar = longText.join('');
    expect(longSoFar.length).toBeGreaterThan('echo: w0'.length);
    expect(`echo: ${words(40)}`.startsWith(longSoFar)).toBe(true);
    expect(longSoFar).not.toBe(`echo: ${words(40)}`);

    await closing;
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(1400);
    expect(took).toBeLessThan(4000);
  });

  it('resolves after the log event of every request, those its closing of connections ended too', async () => {
    const lines: string[] = [];
    server = await startServer({ keyFile: VECTOR_KEY_FILE, onLog: (e) => e.request && lines.push(e.message) });
    // A request whose body is still coming: the drain's end closes its connection.
    const socket = net.connect(server.port, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(`POST /v1/chat/secure_completion HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"half":`);
    await sleep(100);
    await server.close({ drainTimeoutMs: 50 });
    expect(lines).toEqual(['POST /v1/chat/secure_completion aborted']);
    server = undefined;
  });

  it('closes idle kept-alive connections at once and, with nothing in flight, stops at once', async () => {
    server = await startServer({ keyFile: VECTOR_KEY_FILE });
    expect((await fetch(server.url + '/healthz')).status).toBe(200); // leaves a kept-alive connection
    const t0 = performance.now();
    await server.close();
    expect(performance.now() - t0).toBeLessThan(500);
    expect(await refused(server.port)).toBe('ECONNREFUSED');
  });

  it('a request not yet answered at the deadline gets 503 "router shutting down"', async () => {
    server = await startServer({ keyFile: VECTOR_KEY_FILE, drainTimeoutMs: 200, interceptor: () => ({ delayMs: 60_000 }) });
    const pending = fetch(server.url + '/pki/public_key');
    await expect.poll(() => server!.stats.requests).toBe(1);
    await server.close();
    const res = await pending;
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(await res.json()).toEqual({ detail: 'router shutting down' });
  });

  it('a model deaf to its signal does not hold the drain: its stream still ends with "router shutting down", and its whole answer gets the 503', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const warnings: LogEvent[] = [];
    server = await startServer({
      keyFile: VECTOR_KEY_FILE,
      drainTimeoutMs: 200,
      recordRequests: true,
      onLog: (e) => void (e.level === 'warn' && e.message.startsWith('the model') && warnings.push(e)),
      // Deaf to ctx.signal: the stream's next chunk, and the whole answer, wait for release().
      model: (request) =>
        request.stream
          ? (async function* () {
              yield { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content: 'first' }, finish_reason: null }] };
              await released;
            })()
          : released.then(() => ({ id: 'x', object: 'chat.completion', created: 1, model: 'm', choices: [] })),
    });
    // No retries: the 503 is what the caller meets, not a retry refused by the closed listener.
    const client = new SecureCompletionClient({ routerUrl: server.url, allowHttp: true, maxRetries: 0 });
    const chat = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };
    const text: string[] = [];
    const streamEnd = drink(await client.streamSecureRequest(chat), text);
    const whole = client.sendSecureRequest(chat).then(
      () => undefined,
      (err: unknown) => err,
    );
    await expect.poll(() => text.length).toBe(1);
    await expect.poll(() => server!.requests.filter((r) => r.path === '/v1/chat/secure_completion').length).toBe(2);
    try {
      await server.close();
      expect(await streamEnd).toMatchObject({ status: 503, detail: 'router shutting down', sealed: true });
      expect(text).toEqual(['first']);
      expect(await whole).toMatchObject({ status: 503, detail: 'router shutting down' });
      expect(warnings).toHaveLength(2);
      // Each says which request it is of: the stream's, and the whole answer's.
      const requests = server.requests.filter((r) => r.path === '/v1/chat/secure_completion');
      expect(warnings.map((w) => w.fields).sort((a, b) => Number(a!.seq) - Number(b!.seq))).toEqual(requests.map((r) => ({ seq: r.seq, payload_id: r.headers['x-payload-id'] })));
    } finally {
      release();
    }
  });

  it('a client that stops reading is cut off at the deadline: its stream counted aborted, and no model blamed for it', async () => {
    const lines: string[] = [];
    const chunk = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content: 'x'.repeat(60_000) }, finish_reason: null }] };
    server = await startServer({
      keyFile: VECTOR_KEY_FILE,
      drainTimeoutMs: 100,
      recordRequests: true,
      onLog: (e) => void (e.level !== 'info' && lines.push(`${e.message}${e.request ? ` ${e.request.stream_outcome}` : ''}`)),
      // Heeds its signal: never asked for a chunk after the abort, it stops at once.
      model: (_request, ctx) =>
        (async function* () {
          while (!ctx.signal.aborted) yield chunk;
        })(),
    });
    const client = new SecureCompletionClient({ routerUrl: server.url, allowHttp: true, maxRetries: 0 });
    const stream = await client.streamSecureRequest({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    // Read nothing: the sockets fill, and the router waits for room.
    await expect.poll(() => server!.stats.requests).toBeGreaterThan(1);
    await sleep(200);
    await server.close();
    expect(await drink(stream, [])).toBeInstanceOf(StreamTruncatedError);
    const request = server.requests.find((r) => r.path === '/v1/chat/secure_completion')!;
    expect(request.response?.outcome).toBe('aborted');
    expect(lines).toEqual(['POST /v1/chat/secure_completion 200 aborted aborted']);
  });

  it('close() before listen() ends the listen with an error', async () => {
    const { createServer } = await import('../src/index.js');
    const s = createServer({ keyFile: VECTOR_KEY_FILE });
    const listening = s.listen();
    await s.close();
    await expect(listening).rejects.toThrow(/closed before it listened/);
  });
});

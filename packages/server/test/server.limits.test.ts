/**
 * The router's limits: `maxConcurrent` sheds load with 503 and Retry-After (which the client honours),
 * slow clients are cut off by the header and request timeouts, idle kept-alive connections by the
 * keep-alive timeout, and the options are checked.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SecureChatCompletion, SecureCompletionClient } from '@nomyo/core';
import { HEADERS, PACKAGE_CONTENT_TYPE, PATHS, parseServerKey, sealRequestV2, serializePackage } from '@nomyo/core/protocol';
import { createServer, startServer, type LogEvent, type NomyoServer, type ServerOptions } from '../src/index.js';
import { VECTOR_KEY_FILE } from './helpers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let server: NomyoServer | undefined;
afterEach(async () => {
  await server?.close({ drainTimeoutMs: 0 });
  server = undefined;
});

/** A raw connection: what it was sent back, and when it was closed. */
async function rawConnection(port: number): Promise<{ socket: net.Socket; reply: () => string; closed: Promise<number> }> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const t0 = performance.now();
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  socket.on('error', () => {});
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now() - t0)));
  return { socket, reply: () => text, closed };
}

describe('maxConcurrent', () => {
  it('answers 503 with Retry-After: 1 above the limit, before reading the body; the client waits and retries', async () => {
    server = await startServer({ keyFile: VECTOR_KEY_FILE, maxConcurrent: 1, echoDelayMs: 150 });
    const client = new SecureCompletionClient({ routerUrl: server.url, allowHttp: true });
    await client.sendSecureRequest({ model: 'm', messages: [{ role: 'user', content: 'warm' }] }); // fetches the key first
    // A stream holds the one place for ~0.6 s.
    const stream = await client.streamSecureRequest({ model: 'm', messages: [{ role: 'user', content: 'one two three four' }] });
    const res = await fetch(server.url + '/pki/public_key');
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(await res.json()).toEqual({ detail: 'the router is at its limit of concurrent requests: retry shortly' });
    // The client's request is refused too, waits the second it was told, and then gets through.
    const t0 = performance.now();
    const answer = client.sendSecureRequest({ model: 'm', messages: [{ role: 'user', content: 'patient' }] });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
    expect(text).toBe('echo: one two three four');
    expect((await answer).choices[0]?.message.content).toBe('echo: patient');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(900);
    const refused = server.stats.errors;
    expect(refused).toBeGreaterThanOrEqual(2);
  });

  it('a client that pipelines requests and resets its connection gives back every place they held, and the in-flight count', async () => {
    // Requests to /slow wait 300 ms (then 404): the pipelined ones wait behind the first, their responses queued.
    server = await startServer({ keyFile: VECTOR_KEY_FILE, maxConcurrent: 3, interceptor: (req) => (req.path === '/slow' ? { delayMs: 300 } : undefined) });
    const { port } = new URL(server.url);
    const socket = net.connect(Number(port), '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n' + 'GET /pki/public_key HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(2));
    await sleep(100); // all three admitted: the limit's three places
    expect((await fetch(server.url + '/pki/public_key')).status).toBe(503);
    socket.resetAndDestroy();
    await sleep(100);
    const statuses = await Promise.all([0, 1, 2].map(async () => (await fetch(server!.url + '/slow')).status));
    expect(statuses).toEqual([404, 404, 404]);
    const metrics = await (await fetch(server.url + '/metrics')).text();
    expect(/^nomyo_requests_in_flight (\d+)$/m.exec(metrics)?.[1]).toBe('1'); // this scrape
  });

  it('a slow sender of a body nobody takes holds no place: a client with the API key gets through meanwhile, and the sender its answer', async () => {
    server = await startServer({ keyFile: VECTOR_KEY_FILE, apiKey: 'sk-router', maxConcurrent: 2 });
    const port = Number(new URL(server.url).port);
    const senders = await Promise.all([0, 1, 2].map(() => rawConnection(port)));
    const heads = [`POST ${PATHS.secureCompletion} HTTP/1.1\r\nContent-Type: ${PACKAGE_CONTENT_TYPE}`, `POST ${PATHS.secureCompletion} HTTP/1.1\r\nAuthorization: Bearer sk-wrong`, `GET ${PATHS.publicKey} HTTP/1.1`];
    senders.forEach(({ socket }, i) => socket.write(`${heads[i]}\r\nHost: x\r\nContent-Length: 1000\r\n\r\n` + 'x'.repeat(10)));
    await sleep(100);
    const client = new SecureChatCompletion({ baseUrl: server.url, allowHttp: true, apiKey: 'sk-router', maxRetries: 0 });
    expect((await client.create({ model: 'm', messages: [{ role: 'user', content: 'through' }] })).choices[0]?.message.content).toBe('echo: through');
    for (const { socket, reply, closed } of senders) {
      socket.end('x'.repeat(990));
      await closed;
      expect(reply()).toMatch(/^HTTP\/1\.1 (401|413) /);
    }
  });
});

describe("a browser's CORS preflight", () => {
  it('is answered at the limit and while draining, where refused it would fail the page\'s request with no status: the request itself gets the 503 it retries', async () => {
    server = await startServer({ keyFile: VECTOR_KEY_FILE, maxConcurrent: 1, echoDelayMs: 100 });
    const client = new SecureCompletionClient({ routerUrl: server.url, allowHttp: true });
    // A stream holds the one place for ~0.4 s.
    const stream = await client.streamSecureRequest({ model: 'm', messages: [{ role: 'user', content: 'one two three four' }] });
    const port = Number(new URL(server.url).port);
    const preflight = `OPTIONS ${PATHS.secureCompletion} HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type, x-payload-id\r\n\r\n`;
    const atLimit = await rawConnection(port);
    atLimit.socket.write(preflight);
    const post = await rawConnection(port);
    post.socket.write(`POST ${PATHS.secureCompletion} HTTP/1.1\r\nHost: x\r\nContent-Type: ${PACKAGE_CONTENT_TYPE}\r\nContent-Length: 2\r\n\r\n{}`);
    const whileDraining = await rawConnection(port);
    await sleep(100);
    expect(atLimit.reply()).toMatch(/^HTTP\/1\.1 204 [^]*\r\nAccess-Control-Allow-Methods: GET, POST, OPTIONS\r\n/);
    expect(post.reply()).toMatch(/^HTTP\/1\.1 503 [^]*\r\nAccess-Control-Allow-Origin: \*\r\n[^]*\r\nRetry-After: 1\r\n/);
    const closing = server.close({ drainTimeoutMs: 5000 });
    await sleep(50);
    whileDraining.socket.write(preflight);
    await sleep(100);
    expect(whileDraining.reply()).toMatch(/^HTTP\/1\.1 204 [^]*\r\nAccess-Control-Allow-Methods: GET, POST, OPTIONS\r\n/);
    expect(whileDraining.reply()).toMatch(/\r\nConnection: close\r\n/i);
    for await (const _ of stream); // the stream ends, and with it the drain
    await closing;
    for (const { socket } of [atLimit, post, whileDraining]) socket.destroy();
    server = undefined;
  });
});

describe('bodies nobody is entitled to send', () => {
  it('a secure completion without the API key is answered 401 unread, its connection closed: fetch reads the answer', async () => {
    server = await startServer({ keyFile: VECTOR_KEY_FILE, apiKey: 'sk-router', recordRequests: true });
    const body = 'x'.repeat(1024 * 1024);
    for (const headers of [{}, { Authorization: 'Bearer sk-wrong' }] as Array<Record<string, string>>) {
      const res = await fetch(server.url + PATHS.secureCompletion, { method: 'POST', headers: { 'Content-Type': PACKAGE_CONTENT_TYPE, ...headers }, body });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(res.headers.get('connection')).toBe('close');
      const record = server.requests.at(-1)!;
      expect([record.bodyLength, record.body.length]).toEqual([0, 0]);
    }
  });

  it('an upload abandoned mid-body is logged and counted as dropped, with the bytes that came', async () => {
    const lines: LogEvent[] = [];
    server = await startServer({ keyFile: VECTOR_KEY_FILE, onLog: (e) => e.request && lines.push(e) });
    const socket = net.connect(Number(new URL(server.url).port), '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(`POST ${PATHS.secureCompletion} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n` + 'x'.repeat(1000));
    await sleep(100);
    socket.destroy();
    await expect.poll(() => lines.map((e) => [e.level, e.message, e.request?.bytes_in]), { timeout: 5000 }).toEqual([['warn', `POST ${PATHS.secureCompletion} aborted`, 1000]]);
    expect(await (await fetch(server.url + '/metrics')).text()).toMatch(/^nomyo_requests_total\{[^}]*status="0"[^}]*\} 1$/m);
  });

  it('a request to a path that takes no body, with one, is answered 413 unread', async () => {
    server = await startServer({ keyFile: VECTOR_KEY_FILE });
    for (const path of ['/healthz', PATHS.publicKey, '/metrics']) {
      const socket = net.connect(Number(new URL(server.url).port), '127.0.0.1');
      let text = '';
      socket.on('data', (part: Buffer) => (text += part.toString('latin1')));
      const closed = new Promise((resolve) => socket.once('close', resolve));
      socket.end(`GET ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello`);
      await closed;
      expect(text).toMatch(/^HTTP\/1\.1 413 /);
      expect(text).toContain('{"detail":"this request takes no body"}');
    }
  });
});

describe('Expect: 100-continue (curl sends it for large bodies)', () => {
  /** Sends the headers of a request that waits to be told to send its body; resolves once the router has answered something. */
  async function expecting(head: string): Promise<{ socket: net.Socket; reply: () => string; closed: Promise<number> }> {
    const raw = await rawConnection(Number(new URL(server!.url).port));
    raw.socket.write(`${head}\r\nHost: x\r\nExpect: 100-continue\r\n\r\n`);
    await expect.poll(raw.reply, { timeout: 5000 }).toMatch(/\r\n\r\n/);
    return raw;
  }

  it('refuses a body nobody is entitled to send before it is sent: no 100 Continue, the answer at once, the connection closed', async () => {
    server = await startServer({ keyFile: VECTOR_KEY_FILE, apiKey: 'sk-router', bodyLimit: 1000, recordRequests: true });
    const completion = `POST ${PATHS.secureCompletion} HTTP/1.1\r\nContent-Type: ${PACKAGE_CONTENT_TYPE}`;
    const cases: Array<[string, RegExp]> = [
      [`${completion}\r\nContent-Length: 1048576`, /^HTTP\/1\.1 401 [^]*"detail":"missing API key"/], // no API key
      [`${completion}\r\nAuthorization: Bearer sk-router\r\nContent-Length: 1001`, /^HTTP\/1\.1 413 [^]*exceeds 1000 bytes/], // over the limit
      [`GET /healthz HTTP/1.1\r\nContent-Length: 5`, /^HTTP\/1\.1 413 [^]*takes no body/],
      [`GET ${PATHS.publicKey} HTTP/1.1\r\nTransfer-Encoding: chunked`, /^HTTP\/1\.1 413 [^]*takes no body/],
    ];
    for (const [head, answer] of cases) {
      const { reply, closed } = await expecting(head);
      await closed;
      expect(reply()).toMatch(answer);
      expect(reply()).not.toContain('100 Continue');
      expect(server.requests.at(-1)!.bodyLength).toBe(0);
    }
  });

  it('tells a client with the API key to send its body, and answers it', async () => {
    server = await startServer({ keyFile: VECTOR_KEY_FILE, apiKey: 'sk-router' });
    const { key } = await parseServerKey(server.publicKeyPem);
    const payloadId = crypto.randomUUID();
    const request = { model: 'm', messages: [{ role: 'user', content: 'hello' }] };
    const { package: pkg } = await sealRequestV2(new TextEncoder().encode(JSON.stringify(request)), crypto.getRandomValues(new Uint8Array(32)), key, { payloadId, tier: undefined });
    const body = Buffer.from(serializePackage(pkg));
    const { socket, reply } = await expecting(
      `POST ${PATHS.secureCompletion} HTTP/1.1\r\nAuthorization: Bearer sk-router\r\nContent-Type: ${PACKAGE_CONTENT_TYPE}\r\n${HEADERS.payloadId}: ${payloadId}\r\nContent-Length: ${body.length}`,
    );
    expect(reply()).toBe('HTTP/1.1 100 Continue\r\n\r\n');
    socket.write(body);
    await expect.poll(reply, { timeout: 5000 }).toMatch(/HTTP\/1\.1 200 OK[^]*"ciphertext"/);
    socket.destroy();
  });

  it('HTTP/1.0 knows no 100 Continue: its body is read as any other, and nothing is told it', async () => {
    server = await startServer({ keyFile: VECTOR_KEY_FILE });
    const { socket, reply, closed } = await rawConnection(Number(new URL(server.url).port));
    socket.write(`POST ${PATHS.secureCompletion} HTTP/1.0\r\nExpect: 100-continue\r\n${HEADERS.payloadId}: ${crypto.randomUUID()}\r\nContent-Length: 5\r\n\r\nhello`);
    await closed;
    expect(reply()).toMatch(/^HTTP\/1\.1 400 [^]*"detail":"missing X-Public-Key header"/); // read as a v1 request, body and all
    expect(reply()).not.toContain('100 Continue');
  });

  it('a GET without a body is answered as any other', async () => {
    server = await startServer({ keyFile: VECTOR_KEY_FILE });
    const { socket, reply } = await expecting(`GET /healthz HTTP/1.1`);
    await expect.poll(reply, { timeout: 5000 }).toMatch(/^HTTP\/1\.1 200 OK[^]*"status":"ok"/);
    socket.destroy();
  });
});

describe('log lines', () => {
  it('a made-up path of 10,000 characters is logged cut to its first 256, with its length, in the message and the summary', async () => {
    const lines: LogEvent[] = [];
    server = await startServer({ keyFile: VECTOR_KEY_FILE, onLog: (e) => e.request && lines.push(e) });
    const path = '/' + 'a'.repeat(9999);
    expect((await fetch(server.url + path)).status).toBe(404);
    await expect.poll(() => lines.length).toBe(1);
    const logged = `/${'a'.repeat(255)}…(10000 characters)`;
    expect([lines[0]!.message, lines[0]!.request!.path]).toEqual([`GET ${logged} 404`, logged]);
  });
});

describe('slow clients', () => {
  it('a client that takes none of a whole answer for streamStallTimeoutMs is cut off, as a stream\'s is: its place freed, a warning logged', async () => {
    const warnings: string[] = [];
    server = await startServer({ keyFile: VECTOR_KEY_FILE, maxConcurrent: 1, streamStallTimeoutMs: 300, onLog: (e) => e.level === 'warn' && !e.request && warnings.push(e.message) });
    // A sealed request for a 9 MiB echo, sent over a socket that never reads: the answer (12 MiB on
    // the wire) is far more than loopback's buffers take.
    const { key } = await parseServerKey(server.publicKeyPem);
    const payloadId = crypto.randomUUID();
    const request = { model: 'm', messages: [{ role: 'user', content: 'x'.repeat(9 * 1024 * 1024) }] };
    const { package: pkg } = await sealRequestV2(new TextEncoder().encode(JSON.stringify(request)), crypto.getRandomValues(new Uint8Array(32)), key, { payloadId, tier: undefined });
    const body = Buffer.from(serializePackage(pkg));
    const socket = net.connect(Number(new URL(server.url).port), '127.0.0.1');
    socket.pause();
    socket.write(`POST ${PATHS.secureCompletion} HTTP/1.1\r\nHost: x\r\nContent-Type: ${PACKAGE_CONTENT_TYPE}\r\n${HEADERS.payloadId}: ${payloadId}\r\nContent-Length: ${body.length}\r\n\r\n`);
    socket.write(body);
    const closed = new Promise((resolve) => socket.once('close', resolve));
    await expect.poll(() => warnings, { timeout: 10_000 }).toEqual(['a client took none of its answer for 300 ms: its connection was closed']);
    expect((await fetch(server.url + PATHS.publicKey)).status).toBe(200);
    // Read now, the connection turns out closed before the whole answer.
    let received = 0;
    socket.on('data', (part: Buffer) => (received += part.length)).resume();
    await closed;
    expect(received).toBeLessThan(body.length);
  });


  it('headersTimeoutMs: a client that does not finish its headers gets 408 and is closed', async () => {
    server = await startServer({ keyFile: VECTOR_KEY_FILE, headersTimeoutMs: 300, requestTimeoutMs: 1000 });
    const c = await rawConnection(server.port);
    c.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'); // and never the blank line
    const ms = await c.closed;
    expect(c.reply()).toMatch(/^HTTP\/1\.1 408 /);
    expect(ms).toBeGreaterThanOrEqual(250);
    expect(ms).toBeLessThan(2000);
  });

  it('requestTimeoutMs: a client that does not finish its body gets 408 and is closed', async () => {
    server = await startServer({ keyFile: VECTOR_KEY_FILE, headersTimeoutMs: 200, requestTimeoutMs: 500 });
    const c = await rawConnection(server.port);
    c.socket.write('POST /v1/chat/secure_completion HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"half":');
    const ms = await c.closed;
    expect(c.reply()).toMatch(/^HTTP\/1\.1 408 /);
    expect(ms).toBeGreaterThanOrEqual(450);
    expect(ms).toBeLessThan(2500);
  });

  it('keepAliveTimeoutMs: an idle kept-alive connection is closed after it', async () => {
    server = await startServer({ keyFile: VECTOR_KEY_FILE, keepAliveTimeoutMs: 300 });
    const c = await rawConnection(server.port);
    c.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const ms = await c.closed;
    expect(c.reply()).toMatch(/^HTTP\/1\.1 200 /);
    expect(c.reply()).toMatch(/Keep-Alive: timeout=0?\b/i);
    expect(ms).toBeGreaterThanOrEqual(250);
    expect(ms).toBeLessThan(2000);
  });
});

describe('options', () => {
  it.each<[ServerOptions, RegExp]>([
    [{ maxConcurrent: 0 }, /maxConcurrent must be a positive integer/],
    [{ drainTimeoutMs: -1 }, /drainTimeoutMs must be an integer/],
    [{ headersTimeoutMs: 1.5 }, /headersTimeoutMs must be an integer/],
    [{ streamStallTimeoutMs: -1 }, /streamStallTimeoutMs must be an integer/],
    [{ headersTimeoutMs: 2000, requestTimeoutMs: 1000 }, /headersTimeoutMs must not be above requestTimeoutMs/],
    [{ metricsPort: 70000 }, /metricsPort must be an integer/],
    [{ metrics: false, metricsPort: 0 }, /need metrics on/],
  ])('refuses %j', (options, message) => {
    expect(() => createServer(options)).toThrow(message);
  });
});

describe('option checks of the request timeout, the upstream and the API key', () => {
  it('a request timeout alone below the 30 s headers default: the headers timeout follows it (Node\'s own rule)', async () => {
    server = await startServer({ keyFile: VECTOR_KEY_FILE, requestTimeoutMs: 1000 });
    expect((await fetch(server.url + '/healthz')).status).toBe(200);
  });

  it.each<[ServerOptions, RegExp]>([
    [{ upstream: 'http://user:s3cr3t-pass@127.0.0.1:9/v1' }, /^upstream must not hold a user name or password \(user:password@\): give its key as upstreamKey instead$/],
    [{ upstream: 'http://user@127.0.0.1:9/v1' }, /upstream must not hold a user name or password/],
    [{ upstream: 'http://[bad/v1' }, /^upstream must be an http\(s\) URL$/],
    [{ apiKey: '' }, /^apiKey must not be empty/],
    [{ apiKey: 'sk-schlüssel' }, /^apiKey must be printable ASCII without spaces at its ends \(a client sends it in a header\)$/],
    [{ apiKey: ' sk-padded ' }, /^apiKey must be printable ASCII/],
    [{ apiKey: 'sk-line\nbreak' }, /^apiKey must be printable ASCII/],
    [{ echoDelayMs: 5, upstream: 'http://127.0.0.1:9/v1' }, /^echoDelayMs is for the echo model: give no upstream with it$/],
  ])('refuses %j', (options, message) => {
    expect(() => createServer(options)).toThrow(message);
  });
});

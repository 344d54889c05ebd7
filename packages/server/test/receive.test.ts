/**
 * Bodies the router will not take are refused unread, at once: a declared length over the limit, a
 * chunked body the moment it passes it, a completion without the API key, a body on a route that
 * takes none. The answer comes before the client has sent its body, the connection is closed after
 * it, the `maxConcurrent` place is free at once, and the request's line says what it was answered.
 * And a declared length reserves memory only as the body comes.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PACKAGE_CONTENT_TYPE, PATHS } from '@nomyo/core/protocol';
import { startServer, type LogEvent, type NomyoServer, type RequestSummary } from '../src/index.js';
import { VECTOR_KEY_FILE } from './helpers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let server: NomyoServer | undefined;
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await server?.close({ drainTimeoutMs: 0 });
  server = undefined;
});

/** A raw connection that sends `head`, then `chunk` as fast as the router takes it, until closed. */
async function sender(head: string, chunk: Buffer): Promise<{ reply: () => string; closed: Promise<number>; sent: () => number }> {
  const socket = net.connect(server!.port, '127.0.0.1');
  sockets.push(socket);
  await new Promise((resolve) => socket.once('connect', resolve));
  const t0 = performance.now();
  let text = '';
  let sent = 0;
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  socket.on('error', () => {});
  // Bounded: a router that reads on would hold it open for the request timeout.
  const closed = Promise.race([new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now() - t0))), sleep(5000).then(() => Infinity)]);
  socket.write(head);
  const pump = (): void => {
    while (!socket.destroyed && performance.now() - t0 < 10_000) {
      sent += chunk.length;
      if (!socket.write(chunk)) return void socket.once('drain', pump);
    }
  };
  pump();
  return { reply: () => text, closed, sent: () => sent };
}

const COMPLETION = `POST ${PATHS.secureCompletion} HTTP/1.1\r\nHost: x\r\nContent-Type: ${PACKAGE_CONTENT_TYPE}`;
const MIB = Buffer.alloc(1024 * 1024, 32);

/** A router with one place and a body limit of 100 KB, its request lines in `lines`. */
async function router(apiKey?: string): Promise<RequestSummary[]> {
  const lines: RequestSummary[] = [];
  server = await startServer({ keyFile: VECTOR_KEY_FILE, apiKey, bodyLimit: 100_000, maxConcurrent: 1, onLog: (e: LogEvent) => e.request && lines.push(e.request) });
  return lines;
}

describe('bodies refused unread', () => {
  it('a declared Content-Length over the body limit is answered 413 at once, unread, its connection closed and its place free', async () => {
    const lines = await router();
    const c = await sender(`${COMPLETION}\r\nContent-Length: 100000000000\r\n\r\n`, MIB);
    expect(await c.closed).toBeLessThan(3000);
    expect(c.reply()).toMatch(/^HTTP\/1\.1 413 [^]*\r\nConnection: close\r\n[^]*"detail":"request body exceeds 100000 bytes"/);
    expect(lines.map((l) => [l.status, l.bytes_in])).toEqual([[413, 0]]);
    expect((await fetch(server!.url + PATHS.publicKey)).status).toBe(200); // the one place is free
  });

  it('a chunked body is answered 413 as soon as it passes the limit, and its connection closed', async () => {
    const lines = await router();
    const chunk = Buffer.concat([Buffer.from('10000\r\n'), Buffer.alloc(0x10000, 32), Buffer.from('\r\n')]);
    const c = await sender(`${COMPLETION}\r\nTransfer-Encoding: chunked\r\n\r\n`, chunk);
    expect(await c.closed).toBeLessThan(3000);
    expect(c.reply()).toMatch(/^HTTP\/1\.1 413 [^]*\r\nConnection: close\r\n/);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.status).toBe(413);
    // What came until it passed the limit: the chunk that did.
    expect(lines[0]!.bytes_in).toBeGreaterThan(100_000);
    expect(lines[0]!.bytes_in).toBeLessThanOrEqual(100_000 + 0x10000);
    expect((await fetch(server!.url + PATHS.publicKey)).status).toBe(200);
  });

  it('a completion without the right API key is answered 401 before its body is read, its connection closed and its place free', async () => {
    const lines = await router('sk-router');
    for (const auth of ['', 'Authorization: Bearer sk-wrong\r\n']) {
      const c = await sender(`${COMPLETION}\r\n${auth}Content-Length: 100000000000\r\n\r\n`, MIB);
      expect(await c.closed).toBeLessThan(3000);
      expect(c.reply()).toMatch(/^HTTP\/1\.1 401 [^]*\r\nWWW-Authenticate: Bearer\r\n/);
      expect(c.reply()).toMatch(/\r\nConnection: close\r\n/);
    }
    expect(lines.map((l) => [l.status, l.bytes_in])).toEqual([[401, 0], [401, 0]]);
    expect((await fetch(server!.url + PATHS.publicKey)).status).toBe(200);
  });

  it('a body on a route that takes none is answered 413 unread, its connection closed', async () => {
    const lines = await router();
    const c = await sender(`GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000\r\n\r\n`, MIB);
    expect(await c.closed).toBeLessThan(3000);
    expect(c.reply()).toMatch(/^HTTP\/1\.1 413 [^]*\r\nConnection: close\r\n[^]*"detail":"this request takes no body"/);
    expect(lines.map((l) => [l.status, l.bytes_in])).toEqual([[413, 0]]);
  });
});

describe('memory for a body', () => {
  it('a declared Content-Length reserves memory as the body comes, not before: 10 clients declaring 60 MiB and sending 100 bytes', async () => {
    server = await startServer({ keyFile: VECTOR_KEY_FILE });
    const before = process.memoryUsage().arrayBuffers;
    const clients = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const socket = net.connect(server!.port, '127.0.0.1');
        sockets.push(socket);
        socket.on('error', () => {});
        await new Promise((resolve) => socket.once('connect', resolve));
        socket.write(`${COMPLETION}\r\nContent-Length: ${60 * 1024 * 1024}\r\n\r\n${'x'.repeat(100)}`);
        return socket;
      }),
    );
    await sleep(300); // every router has its first bytes
    const reserved = process.memoryUsage().arrayBuffers - before;
    expect(clients).toHaveLength(10);
    // The old way reserved all 600 MiB at once; a first block of 1 MiB each is 10 MiB.
    expect(reserved).toBeLessThan(64 * 1024 * 1024);
  });
});

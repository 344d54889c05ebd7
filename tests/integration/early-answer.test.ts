/**
 * A router, or a proxy in front of it, may answer before it has read a request's whole body; fetch
 * then goes on sending the rest. By then the client has given the body's buffer back for reuse: the
 * next large request serializes its plaintext there, or an answer is decrypted there. What fetch
 * still sends must come from the request as it was, never from that buffer.
 *
 * The peer is a real HTTP server on loopback that answers at once and reads the rest of the body
 * later. The secure memory is the client's own kind of pool, except that what comes back is filled
 * with a marker, as the next request's plaintext would fill it: the marker must never be sent.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import { createServer, Socket, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SecureChatCompletion, type FetchFn, type SecureMemory } from '@nomyo/core';
import type { NomyoServer } from '@nomyo/server';
import { SERVER_KEY_FILE, clientFor, startTestServer } from './support.js';

const MARKER = Buffer.from('NEXT REQUEST PLAINTEXT ');
/** Near the largest request: far more than loopback's socket buffers take in before the peer stops reading. */
const CONTENT = 'x'.repeat(9 * 1024 * 1024);
const PEM = createPublicKey(readFileSync(SERVER_KEY_FILE)).export({ type: 'spki', format: 'pem' }).toString();

/** Secure memory whose freed buffers are at once written over, as reuse by another request would. */
function reusingMemory(): SecureMemory & { reused: number } {
  const memory = {
    kind: 'js' as const,
    reused: 0,
    lock: () => false,
    unlock: (view: Uint8Array) => void view.fill(0),
    zero: (view: Uint8Array) => void view.fill(0),
    alloc: (size: number) => new Uint8Array(size),
    free(view: Uint8Array) {
      if (view.length >= 64 * 1024) memory.reused++;
      for (let at = 0; at < view.length; at += MARKER.length) view.set(MARKER.subarray(0, view.length - at), at);
    },
    info: () => ({ kind: 'js' as const, locking: false, dumpExclusion: false, reason: 'test: reuse at once' }),
  };
  return memory;
}

/**
 * The peer: serves the router key; on the secure path it reads the headers, answers 200 at once
 * (its 2-byte body held back), stops reading, and on `drain()` reads the rest of the request.
 */
async function earlyAnswerer() {
  let socket: Socket | undefined;
  let head = Buffer.alloc(0);
  let declared = 0;
  const early: Buffer[] = [];
  const late: Buffer[] = [];
  let phase: 'head' | 'early' | 'late' = 'head';
  let answered!: () => void;
  const answeredNow = new Promise<void>((resolve) => (answered = resolve));
  let ended!: () => void;
  const allRead = new Promise<void>((resolve) => (ended = resolve));
  const received = () => [...early, ...late].reduce((n, b) => n + b.length, 0);
  const server: Server = createServer((s) => {
    s.on('error', () => {});
    s.on('data', (chunk: Buffer) => {
      if (phase !== 'head') {
        (phase === 'early' ? early : late).push(chunk);
        if (received() >= declared) ended();
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const text = head.subarray(0, end).toString('latin1');
      const rest = head.subarray(end + 4);
      head = Buffer.alloc(0);
      if (text.startsWith('GET /pki/public_key')) {
        s.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(PEM)}\r\n\r\n${PEM}`);
        return;
      }
      declared = Number(/^content-length:\s*(\d+)/im.exec(text)?.[1]);
      socket = s;
      phase = 'early';
      early.push(rest);
      s.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n');
      s.pause();
      answered();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    answeredNow,
    /** Reads the rest of the body; resolves with what came before the answer and what came after. */
    async drain() {
      phase = 'late';
      socket!.resume();
      await allRead;
      socket!.end('{}');
      return { declared, early: Buffer.concat(early), late: Buffer.concat(late) };
    },
    close: () => new Promise<void>((resolve) => (socket?.destroy(), server.close(() => resolve()))),
  };
}

describe('a body fetch has not sent when the answer comes', () => {
  let peer: Awaited<ReturnType<typeof earlyAnswerer>> | undefined;
  afterEach(() => peer?.close());

  it.each([
    ['the runtime’s own fetch', undefined],
    // Keeps the body it is given and sends it later, as node-fetch does until the socket takes it.
    [
      'a fetch option',
      (async (input, init) => {
        const held = init.body;
        if (!(held instanceof Uint8Array)) return globalThis.fetch(input, init);
        const headers = { ...(init.headers as Record<string, string>), 'Content-Length': String(held.length) };
        const body = new ReadableStream({ pull: (c) => (c.enqueue(held), c.close()) });
        return globalThis.fetch(input, { ...init, headers, body, duplex: 'half' } as RequestInit);
      }) as FetchFn,
    ],
  ])('is never read from the buffer that went back for reuse (%s)', { timeout: 30_000 }, async (_name, fetch) => {
    peer = await earlyAnswerer();
    const memory = reusingMemory();
    const client = new SecureChatCompletion({ baseUrl: peer.url, allowHttp: true, keySize: 2048, maxRetries: 0, protocol: 1, secureMemory: memory, ...(fetch ? { fetch } : {}) });
    const outcome = client.create({ model: 'm', messages: [{ role: 'user', content: CONTENT }] }).catch((e: unknown) => e);
    await peer.answeredNow;
    // The answer's headers are in: the client gives the request body's buffer back.
    await expect.poll(() => memory.reused, { interval: 5 }).toBeGreaterThan(0);
    const { declared, early, late } = await peer.drain();
    await outcome;
    // The test can fail: much of the body was still to be sent when its buffer was reused.
    expect(late.length).toBeGreaterThan(1024 * 1024);
    expect(early.length + late.length).toBe(declared);
    expect(early.includes(MARKER)).toBe(false);
    expect(late.includes(MARKER)).toBe(false);
    expect(late.includes(MARKER.subarray(0, 8))).toBe(false);
    await client.dispose();
  });
});

/**
 * A relay in front of the router that takes the client's bytes slowly (one read, then a pause), so
 * fetch meets a full socket again and again: each piece of a large body is copied into a slot of a
 * small ring that is used again a few pieces later, and must not be before the socket has taken it.
 */
async function slowRelay(target: string) {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = new Socket();
    sockets.add(client).add(upstream);
    upstream.connect(Number(port), hostname);
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      client.pause();
      setTimeout(() => client.resume(), 1);
    });
    client.on('end', () => upstream.end());
    for (const s of [client, upstream]) s.on('error', () => {}).on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () => new Promise<void>((resolve) => (sockets.forEach((s) => s.destroy()), server.close(() => resolve()))),
  };
}

describe('a large body over a link slower than the client', () => {
  let router: NomyoServer;
  let relay: Awaited<ReturnType<typeof slowRelay>>;
  afterEach(async () => {
    await relay?.close();
    await router?.close();
  });

  it.each([1, 2] as const)('arrives whole: the router opens it and echoes it (protocol %i)', { timeout: 60_000 }, async (protocol) => {
    router = await startTestServer();
    relay = await slowRelay(router.url);
    const client = clientFor({ url: relay.url } as NomyoServer, { maxRetries: 0, protocol });
    const content = Array.from({ length: 9 * 1024 * 1024 / 16 }, (_, i) => i.toString(16).padStart(15, '.')).join('|');
    const answer = await client.create({ model: 'm', messages: [{ role: 'user', content }] });
    expect(answer.choices[0]?.message.content).toBe(`echo: ${content}`);
    await client.dispose();
  });
});

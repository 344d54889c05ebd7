import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBodyBytes, readText } from '../../src/transport/read-body.js';
import { owned, type ByteSource } from '../../src/memory/owned-bytes.js';
import { FIRST_BODY_BUFFER_BYTES } from '../../src/sizes.js';

const big = randomBytes(300_000);
/** 8 MiB of text that gzip makes 8 KiB of: a Content-Length of 8 KiB, and 8 MiB once fetch has undone it. */
const bomb = gzipSync(Buffer.alloc(8 << 20, 'a'));
let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = req.url ?? '/';
    if (path === '/length') res.writeHead(200, { 'Content-Length': big.length }).end(big);
    else if (path === '/chunked') {
      res.writeHead(200);
      for (let i = 0; i < big.length; i += 10_000) res.write(big.subarray(i, i + 10_000));
      res.end();
    } else if (path === '/gzip') {
      const packed = gzipSync(big);
      res.writeHead(200, { 'Content-Length': packed.length, 'Content-Encoding': 'gzip' }).end(packed);
    } else if (path === '/bomb') res.writeHead(200, { 'Content-Length': bomb.length, 'Content-Encoding': 'gzip' }).end(bomb);
    else if (path === '/declared-large') {
      // Says 4 MiB more than the first buffer, sends one KiB, and hangs up.
      res.writeHead(200, { 'Content-Length': FIRST_BODY_BUFFER_BYTES + (4 << 20) });
      res.write(Buffer.alloc(1024));
      setTimeout(() => res.destroy(), 50);
    } else if (path === '/large') {
      const body = Buffer.alloc(FIRST_BODY_BUFFER_BYTES + (4 << 20), 7);
      res.writeHead(200, { 'Content-Length': body.length }).end(body);
    } else if (path === '/empty') res.writeHead(200, { 'Content-Length': 0 }).end();
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  url = `http://127.0.0.1:${address.port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** A source that knows which of its buffers are out. */
function tracked(): ByteSource & { live: Set<Uint8Array>; sizes: number[] } {
  const live = new Set<Uint8Array>();
  const sizes: number[] = [];
  return {
    live,
    sizes,
    secure: false,
    take(size) {
      const b = new Uint8Array(size);
      sizes.push(size);
      live.add(b);
      return owned(b, false, () => expect(live.delete(b)).toBe(true));
    },
  };
}


describe('readBodyBytes', () => {
  it.each(['/length', '/chunked', '/gzip'])('reads %s into one buffer, byte for byte', async (path) => {
    const source = tracked();
    const body = await readBodyBytes(await fetch(url + path), 1 << 20, source);
    expect(Buffer.from(body.bytes).equals(big)).toBe(true);
    expect(source.live.size).toBe(1); // grown buffers went back
    body.release();
    expect(source.live.size).toBe(0);
    if (path === '/length') expect(source.sizes).toEqual([big.length]); // sized once, no growing
  });

  it('reads an empty body', async () => {
    const body = await readBodyBytes(await fetch(`${url}/empty`), 100, tracked());
    expect(body.bytes.length).toBe(0);
  });

  it.each(['/length', '/chunked', '/gzip'])('refuses %s above the limit and gives every buffer back', async (path) => {
    const source = tracked();
    await expect(readBodyBytes(await fetch(url + path), big.length - 1, source)).rejects.toThrow(/exceeds/);
    expect(source.live.size).toBe(0);
    if (path === '/length') expect(source.sizes).toEqual([]); // refused on the declared length alone
  });

  it('a declared length reserves at most FIRST_BODY_BUFFER_BYTES until that much has come, then grows straight to it', async () => {
    const lying = tracked();
    await expect(readBodyBytes(await fetch(`${url}/declared-large`), 64 << 20, lying)).rejects.toThrow();
    expect(lying.sizes).toEqual([FIRST_BODY_BUFFER_BYTES]);
    expect(lying.live.size).toBe(0);
    const honest = tracked();
    const body = await readBodyBytes(await fetch(`${url}/large`), 64 << 20, honest);
    expect(honest.sizes).toEqual([FIRST_BODY_BUFFER_BYTES, FIRST_BODY_BUFFER_BYTES + (4 << 20)]);
    expect(body.bytes.length).toBe(FIRST_BODY_BUFFER_BYTES + (4 << 20));
    expect(body.bytes.every((b) => b === 7)).toBe(true);
    body.release();
  });

  it('reads exactly at the limit (a declared length counts as the body\'s, as readText has it)', async () => {
    for (const path of ['/length', '/chunked']) {
      const body = await readBodyBytes(await fetch(url + path), big.length, tracked()).catch((e: Error) => {
        throw new Error(`${path}: ${e.message}`);
      });
      expect(body.bytes.length).toBe(big.length);
    }
  });
});

describe('readText', () => {
  it('holds an encoded body to the limit once fetch has undone it: Content-Length counts the encoded bytes', async () => {
    expect(bomb.length).toBeLessThan(64 * 1024);
    expect(await readText(await fetch(`${url}/bomb`), 64 * 1024, true)).toBe('a'.repeat(64 * 1024)); // an error body: cut
    await expect(readText(await fetch(`${url}/bomb`), 64 * 1024, false)).rejects.toThrow(/exceeds/); // a key: refused
  });
});

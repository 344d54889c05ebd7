import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBodyBytes } from '../src/transport/http.js';

const big = randomBytes(300_000);
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
    } else if (path === '/empty') res.writeHead(200, { 'Content-Length': 0 }).end();
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  url = `http://127.0.0.1:${address.port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function tracked() {
  const live = new Set<Uint8Array>();
  return {
    live,
    sizes: [] as number[],
    alloc(size: number) {
      const b = new Uint8Array(size);
      this.sizes.push(size);
      live.add(b);
      return b;
    },
    free(b: Uint8Array) {
      expect(live.delete(b)).toBe(true);
    },
  };
}


describe('readBodyBytes', () => {
  it.each(['/length', '/chunked', '/gzip'])('reads %s into one buffer, byte for byte', async (path) => {
    const source = tracked();
    const { buffer, length } = await readBodyBytes(await fetch(url + path), 1 << 20, source);
    expect(Buffer.from(buffer.subarray(0, length))).toEqual(big);
    expect(source.live.size).toBe(1); // grown buffers went back
    if (path === '/length') expect(source.sizes).toEqual([big.length]); // sized once, no growing
  });

  it('reads an empty body', async () => {
    const { length } = await readBodyBytes(await fetch(`${url}/empty`), 100, tracked());
    expect(length).toBe(0);
  });

  it.each(['/length', '/chunked', '/gzip'])('refuses %s above the limit and gives every buffer back', async (path) => {
    const source = tracked();
    await expect(readBodyBytes(await fetch(url + path), big.length - 1, source)).rejects.toThrow(/exceeds/);
    expect(source.live.size).toBe(0);
    if (path === '/length') expect(source.sizes).toEqual([]); // refused on the declared length alone
  });

  it('reads exactly at the limit (a declared length counts as the body\'s, as readText has it)', async () => {
    for (const path of ['/length', '/chunked']) {
      const { length } = await readBodyBytes(await fetch(url + path), big.length, tracked()).catch((e: Error) => {
        throw new Error(`${path}: ${e.message}`);
      });
      expect(length).toBe(big.length);
    }
  });
});

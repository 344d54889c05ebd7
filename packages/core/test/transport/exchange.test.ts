/**
 * Who reads a text body (an error's, the router's key): the runtime's own fetch with its own reader,
 * the fastest; a fetch option, or a global fetch replaced since load (whose body may not heed the
 * signal), has it read here, where the deadline cancels it.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SecureCompletionClient } from '../../src/client/secure-completion-client.js';
import { exchange } from '../../src/transport/exchange.js';

const KEY = readFileSync(new URL('../../../../test-vectors/v1/keys/server_4096.pub.pem', import.meta.url), 'utf8');
let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/pki/public_key') res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(KEY) }).end(KEY);
    else res.writeHead(503, { 'Content-Type': 'application/json', 'Content-Length': 17 }).end('{"detail":"busy"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** How often Response#text read a body while `fn` ran. */
async function textReads(fn: () => Promise<unknown>): Promise<number> {
  const text = vi.spyOn(Response.prototype, 'text');
  try {
    await fn();
    return text.mock.calls.length;
  } finally {
    text.mockRestore();
  }
}

describe('who reads a text body', () => {
  const viaGlobal = (input: string | URL | Request, init?: RequestInit) => globalThis.fetch(input, init);

  it('the runtime\'s own fetch reads it; a fetch option, or a global fetch replaced since load, has it read here', async () => {
    const error = (ownFetch: boolean) => exchange(viaGlobal, `${url}/fail`, { method: 'POST' }, { timeout: 5_000, ownFetch });
    expect(await textReads(async () => expect((await error(true)).text).toBe('{"detail":"busy"}'))).toBe(1);
    expect(await textReads(async () => expect((await error(false)).text).toBe('{"detail":"busy"}'))).toBe(0);
    const original = globalThis.fetch;
    globalThis.fetch = (input, init) => original(input, init);
    try {
      expect(await textReads(() => error(true))).toBe(0);
    } finally {
      globalThis.fetch = original;
    }
  });

  it('the router\'s key, fetched by a client without a fetch option, is read by the runtime\'s own fetch', async () => {
    const client = new SecureCompletionClient({ routerUrl: url, allowHttp: true, keyRotationInterval: 0 });
    try {
      expect(await textReads(() => client.fetchServerPublicKey())).toBe(1);
    } finally {
      await client.dispose();
    }
  });
});

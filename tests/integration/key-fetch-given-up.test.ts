/**
 * The router key's fetch, shared by a client's requests, is cancelled once no request waits for it
 * any more (each aborted, or timed out) and when the client is disposed: a process whose requests
 * gave up ends, instead of being held open by that fetch until the client's timeout (120 s here).
 */
import { execFile } from 'node:child_process';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APIConnectionTimeoutError, APIUserAbortError, SecureCompletionClient } from '@nomyo/core';
import { routerWithHangingKeyRefresh, startTestServer } from './support.js';

const run = promisify(execFile);
const CLIENT = fileURLToPath(new URL('./fixtures/gives-up-client.mjs', import.meta.url));
const hello = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };

describe("a request that gives up while the router's key is fetched", () => {
  let silent: Server; // takes connections, never answers
  let url: string;
  beforeAll(async () => {
    silent = createServer((socket) => socket.on('error', () => {}));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  });
  afterAll(() => silent.close());

  it.each([
    ['abort', 'APIUserAbortError'],
    ['timeout', 'APIConnectionTimeoutError'],
    ['nodispose', 'APIUserAbortError'],
  ])('%s: the process ends, not held open by the fetch until the client timeout', async (mode, error) => {
    // execFile's own timeout, far below the client's 120 s: a process held open fails the test.
    const { stdout } = await run(process.execPath, [CLIENT, url, mode], { timeout: 20_000 });
    expect(stdout).toBe(error);
  });

  it('a request whose signal was aborted before it began is refused at once, leaving nothing unhandled', async () => {
    const client = new SecureCompletionClient({ routerUrl: url, allowHttp: true, maxRetries: 0, timeout: 5_000 });
    await expect(client.sendSecureRequest(hello, undefined, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(APIUserAbortError);
    await new Promise((resolve) => setTimeout(resolve, 50)); // an unhandled rejection would fail the run
    await client.dispose();
  });

  it('a request that starts just as another gives up starts a fetch of its own, not the cancelled one', async () => {
    const client = new SecureCompletionClient({ routerUrl: url, allowHttp: true, maxRetries: 0, timeout: 5_000 });
    const first = new AbortController();
    const aborted = client.sendSecureRequest(hello, undefined, { signal: first.signal });
    await new Promise((resolve) => setTimeout(resolve, 100));
    first.abort();
    const next = client.sendSecureRequest(hello, undefined, { timeout: 300 });
    await expect(aborted).rejects.toBeInstanceOf(APIUserAbortError);
    // Its own end: its timeout (the router never answers), not the other's abort.
    await expect(next).rejects.toBeInstanceOf(APIConnectionTimeoutError);
    await client.dispose();
  });
});

describe("a request whose timeout is shorter than the router key's fetch", () => {
  it('finds that fetch still under way on its retry: one fetch, and the answer', async () => {
    const server = await startTestServer({ interceptor: (req) => (req.path === '/pki/public_key' ? { delayMs: 1_500 } : undefined) });
    let keyFetches = 0;
    const fetchCounting: typeof fetch = (input, init) => {
      if (String(input).endsWith('/pki/public_key')) keyFetches++;
      return fetch(input, init);
    };
    const client = new SecureCompletionClient({ routerUrl: server.url, allowHttp: true, maxRetries: 2, timeout: 30_000, fetch: fetchCounting });
    try {
      const answer = await client.sendSecureRequest(hello, undefined, { timeout: 1_000 });
      expect(answer.choices[0]?.message.content).toBe('echo: hi');
      expect(keyFetches).toBe(1);
    } finally {
      await client.dispose();
      await server.close();
    }
  });
});

describe("a stream request aborted while the router's key is fetched again after a plain 400", () => {
  it("ends with the caller's own abort, a fresh error each time: never an error shared by every call", async () => {
    const { router, keyFetches } = await routerWithHangingKeyRefresh();
    try {
      const client = new SecureCompletionClient({ routerUrl: router.url, allowHttp: true, maxRetries: 0 });
      const errors: unknown[] = [];
      for (const reason of ['first', 'second']) {
        const before = keyFetches();
        const controller = new AbortController();
        const outcome = client.streamSecureRequest(hello, undefined, { signal: controller.signal }).catch((e: unknown) => e);
        while (keyFetches() < Math.max(before + 1, 2)) await new Promise((resolve) => setTimeout(resolve, 5));
        controller.abort(reason);
        errors.push(await outcome);
      }
      expect(errors[0]).toBeInstanceOf(APIUserAbortError);
      expect(errors[1]).toBeInstanceOf(APIUserAbortError);
      expect(errors[0]).not.toBe(errors[1]);
      expect((errors[0] as Error).cause).toBe('first');
      expect((errors[1] as Error).cause).toBe('second');
      await client.dispose();
    } finally {
      await router.close();
    }
  });
});

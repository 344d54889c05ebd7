import { createServer as createTcpServer } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIUserAbortError,
  RateLimitError,
  SecureChatCompletion,
  ServiceUnavailableError,
} from '@nomyo/core';
import type { InterceptAction, InterceptedRequest, NomyoServer } from '@nomyo/server';
import { readFileSync } from 'node:fs';
import { pemToDer } from '@nomyo/core/protocol';
import { SERVER_KEY_FILE, clientFor, hello, secureRequests, startTestServer, text } from './support.js';

describe('retries, timeouts and aborts', () => {
  let server: NomyoServer;
  let script: (req: InterceptedRequest) => InterceptAction | undefined = () => undefined;
  beforeAll(async () => {
    server = await startTestServer({ interceptor: (req) => (req.path === '/v1/chat/secure_completion' ? script(req) : undefined) });
  });
  beforeEach(() => {
    server.clearRequests();
    script = () => undefined;
  });
  afterAll(() => server.close());

  it.each([2, 1] as const)('protocol %i: retries a 429 after the Retry-After it names, with a fresh package each time (a key of its own, as the router unwraps it)', async (protocol) => {
    server.clearRequests();
    script = (req) => (req.attempt === 1 ? { status: 429, headers: { 'Retry-After': '1' } } : undefined);
    const started = Date.now();
    const answer = await clientFor(server, { protocol }).create(hello);
    expect(answer.choices[0]!.message.content).toBe('echo: Hello, secret world');
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    const [first, second] = secureRequests(server).map((r) => JSON.parse(text(r.body)));
    // RSA-OAEP is randomised, so the wrapped keys differ even for one key: unwrapped, they must too.
    const routerKey = await crypto.subtle.importKey('pkcs8', pemToDer(readFileSync(SERVER_KEY_FILE, 'utf8'), 'PRIVATE KEY'), { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['decrypt']);
    const unwrapped = await Promise.all([first, second].map(async (p) => Buffer.from(await crypto.subtle.decrypt({ name: 'RSA-OAEP' }, routerKey, Buffer.from(p.encrypted_aes_key, 'base64'))).toString('hex')));
    expect(unwrapped[0]).not.toBe(unwrapped[1]);
    expect(first.encrypted_payload.nonce).not.toBe(second.encrypted_payload.nonce);
    expect(first.encrypted_payload.ciphertext).not.toBe(second.encrypted_payload.ciphertext);
    // Same request, so the same payload id.
    const ids = secureRequests(server).map((r) => r.headers['x-payload-id']);
    expect(ids[0]).toBe(ids[1]);
  });

  it('retries 503 up to maxRetries, then gives the error', async () => {
    script = (req) => (req.attempt <= 2 ? { status: 503, headers: { 'Retry-After': '0.01' } } : undefined);
    await expect(clientFor(server, { maxRetries: 2 }).create(hello)).resolves.toBeTruthy();
    expect(secureRequests(server)).toHaveLength(3);

    server.clearRequests();
    script = () => ({ status: 503, headers: { 'Retry-After': '0.01' } });
    await expect(clientFor(server, { maxRetries: 2 }).create(hello)).rejects.toBeInstanceOf(ServiceUnavailableError);
    expect(secureRequests(server)).toHaveLength(3);
  });

  it('backs off without Retry-After (exponential, jittered)', async () => {
    script = (req) => (req.attempt <= 2 ? { status: 503 } : undefined);
    const started = Date.now();
    await clientFor(server, { maxRetries: 2 }).create(hello);
    // 250..500 ms, then 500..1000 ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(700);
  });

  it('does not wait out a Retry-After over a minute: the caller gets the 429 with retryAfter', async () => {
    script = () => ({ status: 429, headers: { 'Retry-After': '3600' } });
    const err = await clientFor(server).create(hello).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitError);
    expect((err as RateLimitError).retryAfter).toBe(3600);
    expect(secureRequests(server)).toHaveLength(1);
  });

  it('retries a dropped connection, then reports APIConnectionError', async () => {
    script = (req) => (req.attempt === 1 ? { destroy: true } : undefined);
    await expect(clientFor(server).create(hello)).resolves.toBeTruthy();
    server.clearRequests();
    script = () => ({ destroy: true });
    await expect(clientFor(server, { maxRetries: 1 }).create(hello)).rejects.toBeInstanceOf(APIConnectionError);
    expect(secureRequests(server)).toHaveLength(2);
  });

  it('times out a slow router with APIConnectionTimeoutError', async () => {
    script = () => ({ delayMs: 3000 });
    const started = Date.now();
    const err = await clientFor(server, { maxRetries: 0, timeout: 300 }).create(hello).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIConnectionTimeoutError);
    expect(Date.now() - started).toBeLessThan(2500);
    // Per-call timeout overrides the client's.
    const err2 = await clientFor(server, { maxRetries: 0 }).create(hello, { timeout: 200 }).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(APIConnectionTimeoutError);
  });

  it('stops at once when the caller aborts, in flight or during a backoff', async () => {
    script = () => ({ delayMs: 3000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    await expect(clientFor(server).create(hello, { signal: controller.signal })).rejects.toBeInstanceOf(APIUserAbortError);
    expect(Date.now() - started).toBeLessThan(2000);

    script = () => ({ status: 503, headers: { 'Retry-After': '30' } });
    const second = new AbortController();
    setTimeout(() => second.abort(), 300);
    await expect(clientFor(server).create(hello, { signal: second.signal })).rejects.toBeInstanceOf(APIUserAbortError);

    await expect(clientFor(server).create(hello, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(APIUserAbortError);
  });

  it('an abort also ends the wait for a slow router-key fetch (which goes on for other callers)', async () => {
    const slowKey = await startTestServer({ interceptor: (req) => (req.path === '/pki/public_key' ? { delayMs: 1500 } : undefined) });
    try {
      const client = clientFor(slowKey);
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      const started = Date.now();
      const waiting = client.create(hello);
      await expect(client.create(hello, { signal: controller.signal })).rejects.toBeInstanceOf(APIUserAbortError);
      expect(Date.now() - started).toBeLessThan(1000);
      await expect(waiting).resolves.toBeTruthy();
      expect(slowKey.stats.publicKeyFetches).toBe(1);
    } finally {
      await slowKey.close();
    }
  });

  it("the router key's fetch is retried as one of the call's attempts, never within them, and waited for only within the call's timeout", async () => {
    const keyServer = await startTestServer({ interceptor: (req) => (req.path === '/pki/public_key' ? keyAnswer() : undefined) });
    let keyAnswer = (): InterceptAction | undefined => ({ status: 503, headers: { 'Retry-After': '0.01' } });
    try {
      await expect(clientFor(keyServer, { maxRetries: 2 }).create(hello)).rejects.toBeInstanceOf(ServiceUnavailableError);
      expect(keyServer.requests.filter((r) => r.path === '/pki/public_key')).toHaveLength(3); // each attempt's one fetch, not 3 × 3
      keyAnswer = () => ({ delayMs: 5000 });
      const started = Date.now();
      const err = await clientFor(keyServer, { maxRetries: 0 }).create(hello, { timeout: 300 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(APIConnectionTimeoutError);
      expect((err as Error).message).toBe('no router key within 300 ms');
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await keyServer.close({ drainTimeoutMs: 0 });
    }
  });

  it('refused connections and unknown hosts are APIConnectionError', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const probe = createTcpServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const refused = new SecureChatCompletion({ baseUrl: `http://127.0.0.1:${closedPort}`, allowHttp: true, keySize: 2048, maxRetries: 0 });
    const err = await refused.create(hello).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIConnectionError);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
    const dns = new SecureChatCompletion({ baseUrl: 'https://no-such-host.invalid', keySize: 2048, maxRetries: 0 });
    await expect(dns.create(hello)).rejects.toBeInstanceOf(APIConnectionError);
  });

  it('refetches the router key after its TTL', async () => {
    const before = server.stats.publicKeyFetches;
    const client = clientFor(server, { serverKeyTtl: 400 });
    await client.client.keyPair(); // key generation must not eat into the TTL
    await client.create(hello);
    await client.create(hello);
    await new Promise((r) => setTimeout(r, 450));
    await client.create(hello);
    expect(server.stats.publicKeyFetches - before).toBe(2);
  });
});

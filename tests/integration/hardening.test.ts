import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APIError, InvalidArgumentError, SecureChatCompletion, SecurityError } from '@nomyo/core';
import type { InterceptAction, InterceptedRequest, NomyoServer } from '@nomyo/server';
import { makeTestCertificates, type TestCertificates } from '@nomyo/test-support/tls';
import { clientFor, hello, secureRequests, startTestServer } from './support.js';

describe('redirects are refused: a request never leaves the configured router URL', () => {
  let target: NomyoServer;
  let redirector: NomyoServer;
  let redirectWhat: (req: InterceptedRequest) => boolean = () => true;
  beforeAll(async () => {
    target = await startTestServer();
    redirector = await startTestServer({
      interceptor: (req): InterceptAction | undefined => (redirectWhat(req) ? { status: 307, headers: { Location: `${target.url}${req.path}` } } : undefined),
    });
  });
  afterAll(async () => {
    await redirector.close();
    await target.close();
  });

  it('for the router key fetch and for the package POST', async () => {
    redirectWhat = () => true;
    const err = await clientFor(redirector).create(hello).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecurityError);
    expect((err as Error).message).toMatch(/redirect/);
    redirectWhat = (req) => req.method === 'POST';
    const err2 = await clientFor(redirector).create(hello).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(SecurityError);
    expect(target.stats.requests).toBe(0);
  });

  it('for a large package POST too (sent without a second copy for re-sending), on v1 and v2', async () => {
    redirectWhat = (req) => req.method === 'POST';
    const large = { model: 'm', messages: [{ role: 'user', content: 'r'.repeat(200_000) }] };
    for (const protocol of [1, 2] as const) {
      const err = await clientFor(redirector, { protocol, maxRetries: 0 }).create(large).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SecurityError);
      expect((err as Error).message).toMatch(/redirect/);
    }
    expect(target.stats.requests).toBe(0);
  });

  it('from https to plain http, without allowHttp', async () => {
    const tls: TestCertificates = makeTestCertificates();
    const httpsRedirector = await startTestServer({
      tls: { cert: tls.certPem, key: tls.keyPem },
      interceptor: (req) => ({ status: 307, headers: { Location: `${target.url}${req.path}` } }),
    });
    try {
      // Trust the test CA for this client only: a fetch that passes a CA through undici is not
      // available on Node 20 without a dependency, so run through node:https instead.
      const { default: https } = await import('node:https');
      const fetchWithCa = (url: string, init: RequestInit) =>
        new Promise<Response>((resolve, reject) => {
          const req = https.request(url, { method: init.method, headers: init.headers as Record<string, string>, ca: tls.caPem }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve(new Response(res.statusCode === 307 ? null : Buffer.concat(chunks), { status: res.statusCode!, headers: res.headers as Record<string, string> })));
          });
          req.on('error', reject);
          req.end(init.body as string | undefined);
        });
      const client = new SecureChatCompletion({ baseUrl: httpsRedirector.url, keySize: 2048, maxRetries: 0, fetch: fetchWithCa });
      await expect(client.create(hello)).rejects.toBeInstanceOf(SecurityError);
      expect(target.stats.requests).toBe(0);
    } finally {
      await httpsRedirector.close();
      tls.cleanup();
    }
  });
});

describe('arguments that would reach a header or a timer', () => {
  let server: NomyoServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  it('a payload id with CR, LF, spaces or over 128 characters is refused before sending', async () => {
    const client = clientFor(server).client;
    for (const id of ['abc\r\nX-Injected: 1', 'a b', '', 'x'.repeat(129), 'ünïcode']) {
      await expect(client.sendSecureRequest(hello, id)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    expect(server.stats.requests).toBe(0);
    await expect(client.sendSecureRequest(hello, 'x'.repeat(128))).resolves.toBeTruthy();
  });

  it('a timeout longer than a timer can hold is refused, not fired at once', async () => {
    expect(() => clientFor(server, { timeout: 2 ** 31 })).toThrow(InvalidArgumentError);
    await expect(clientFor(server).create(hello, { timeout: 2 ** 31 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('one signal shared by many concurrent requests carries one listener (no listener warning)', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const client = clientFor(server);
      const shared = new AbortController();
      await Promise.all(Array.from({ length: 25 }, () => client.create(hello, { signal: shared.signal })));
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).not.toContain('MaxListenersExceededWarning');
  });
});

describe('answer sizes', () => {
  let server: NomyoServer;
  let body: string | undefined;
  let status = 200;
  beforeAll(async () => {
    server = await startTestServer({ interceptor: (req) => (req.path === '/v1/chat/secure_completion' && body !== undefined ? { status, body } : undefined) });
  });
  afterAll(() => server.close());

  it('refuses an answer over 128 MiB without reading it into memory', async () => {
    body = 'x'.repeat(128 * 1024 * 1024 + 1);
    status = 200;
    const err = await clientFor(server, { maxRetries: 0 }).create(hello).catch((e: unknown) => e);
    body = undefined;
    expect(err).toBeInstanceOf(SecurityError);
    expect((err as Error).message).toMatch(/exceeds 134217728 bytes/);
  });

  it('reads only the start of a huge error body, and still shows its detail', async () => {
    body = JSON.stringify({ detail: 'quota exhausted', padding: 'p'.repeat(2 * 1024 * 1024) });
    status = 403;
    const err = (await clientFor(server, { maxRetries: 0 }).create(hello).catch((e: unknown) => e)) as APIError;
    body = undefined;
    expect(err.status).toBe(403);
    expect(err.detail!.length).toBeLessThanOrEqual(100);
    expect(secureRequests(server).length).toBeGreaterThan(0);
  });
});

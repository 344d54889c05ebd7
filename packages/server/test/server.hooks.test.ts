/** The test hooks client suites rely on: request log, interceptor, tampering, key rotation, timing. */
import { afterEach, describe, expect, it } from 'vitest';
import { HEADERS, PATHS, openPackage } from '@nomyo/core/protocol';
import { HttpError, PROCESSING_TIME_HEADER, startServer, type LogEvent, type NomyoServer, type RequestRecord, type ServerOptions } from '../src/index.js';
import { CHAT, VECTOR_KEY_FILE, clientKey, post, sealRequest, secureCompletion } from './helpers.js';

let server: NomyoServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(options: ServerOptions = {}): Promise<NomyoServer> {
  server = await startServer({ keyFile: VECTOR_KEY_FILE, recordRequests: true, ...options });
  return server;
}

async function sealed(s: NomyoServer): Promise<string> {
  return JSON.stringify(await sealRequest(s.publicKeyPem, CHAT));
}

describe('request log and onRequest', () => {
  it('records method, path, headers and the raw body; no plaintext crosses the wire', async () => {
    const seen: RequestRecord[] = [];
    const s = await start({ onRequest: (r) => seen.push(r) });
    const secret = 'the launch code is 0000';
    await secureCompletion(s.url, { model: 'm', messages: [{ role: 'user', content: secret }] });

    expect(s.requests.map((r) => `${r.method} ${r.path} ${r.response?.status}`)).toEqual([`GET ${PATHS.publicKey} 200`, `POST ${PATHS.secureCompletion} 200`]);
    expect(seen).toEqual(s.requests);
    const [, completion] = s.requests as [RequestRecord, RequestRecord];
    expect(completion.headers['x-payload-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.parse(new TextDecoder().decode(completion.body)).version).toBe('1.0');
    for (const bytes of [completion.body, completion.response?.body ?? new Uint8Array()]) {
      const text = new TextDecoder().decode(bytes);
      expect(text).not.toContain('launch code');
      expect(text).not.toContain('echo:');
    }
    expect(completion.response?.outcome).toBe('answered');
    expect(completion.response?.processingMs).toBeGreaterThan(0);
    expect(s.stats).toEqual({ requests: 2, publicKeyFetches: 1, completions: 1, errors: 0 });
  });

  it('keeps only the latest N with recordRequests: N, and clearRequests resets numbering', async () => {
    const s = await start({ recordRequests: 2 });
    for (let i = 0; i < 3; i++) await fetch(s.url + PATHS.publicKey);
    expect(s.requests.map((r) => r.seq)).toEqual([2, 3]);
    s.clearRequests();
    await fetch(s.url + PATHS.publicKey);
    expect(s.requests.map((r) => [r.seq, r.attempt])).toEqual([[1, 1]]);
    expect(s.stats.publicKeyFetches).toBe(4);
  });

  it('shows that nothing reached the server', async () => {
    const s = await start();
    expect(s.requests).toEqual([]);
    expect(s.stats.requests).toBe(0);
  });
});

describe('interceptor', () => {
  it('scripts failures by attempt: 429 with Retry-After, then 503, then the real answer', async () => {
    const s = await start({
      interceptor: ({ path, attempt }) => {
        if (path !== PATHS.secureCompletion) return undefined;
        if (attempt === 1) return { status: 429, headers: { 'Retry-After': '1' }, body: { detail: 'rate limited' } };
        if (attempt === 2) return { status: 503 };
        return undefined;
      },
    });
    const body = await sealed(s);
    const first = await post(s.url, body);
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBe('1');
    expect(first.headers.get('access-control-allow-origin')).toBe('*');
    expect(await first.json()).toEqual({ detail: 'rate limited' });
    const second = await post(s.url, body);
    expect(second.status).toBe(503);
    expect(await second.json()).toEqual({ detail: 'Service Unavailable' });
    expect((await post(s.url, body)).status).toBe(200);
    expect(s.requests.map((r) => r.response?.outcome)).toEqual(['intercepted', 'intercepted', 'answered']);
    expect(s.stats.errors).toBe(2);
  });

  it('sends hostile and non-JSON bodies raw', async () => {
    const hostile = '\u001b[2J\u001b]0;pwned\u0007' + 'A'.repeat(5000);
    const s = await start({
      interceptor: ({ attempt }) =>
        attempt === 1 ? { status: 418, body: { detail: hostile } } : { status: 500, body: '<html>oops</html>', headers: { 'Content-Type': 'text/html' } },
    });
    const teapot = await fetch(s.url + PATHS.publicKey);
    expect(teapot.status).toBe(418);
    expect(((await teapot.json()) as { detail: string }).detail).toBe(hostile);
    const html = await fetch(s.url + PATHS.publicKey);
    expect(html.status).toBe(500);
    expect(html.headers.get('content-type')).toBe('text/html');
    expect(await html.text()).toBe('<html>oops</html>');
  });

  it('delays an answer (counted in the processing time)', async () => {
    const s = await start({ interceptor: () => ({ delayMs: 150 }) });
    const t0 = performance.now();
    const res = await fetch(s.url + PATHS.publicKey);
    expect(res.status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
    expect(Number(res.headers.get(PROCESSING_TIME_HEADER))).toBeGreaterThanOrEqual(140);
  });

  it('drops the connection: the client sees a network error, the server keeps serving', async () => {
    const s = await start({ interceptor: ({ attempt }) => (attempt === 1 ? { destroy: true } : undefined) });
    await expect(fetch(s.url + PATHS.publicKey)).rejects.toThrow(TypeError);
    expect((await fetch(s.url + PATHS.publicKey)).status).toBe(200);
    expect(s.requests[0]?.response).toMatchObject({ status: 0, outcome: 'destroyed' });
  });

  it('notices a client that gives up during a delay, and close() cuts a delay that outlasts its drain short with 503', async () => {
    const s = await start({ interceptor: () => ({ delayMs: 60_000 }), drainTimeoutMs: 200 });
    await expect(fetch(s.url + PATHS.publicKey, { signal: AbortSignal.timeout(100) })).rejects.toThrow();
    await expect.poll(() => s.requests[0]?.response?.outcome).toBe('aborted');
    const pending = fetch(s.url + PATHS.publicKey);
    await expect.poll(() => s.requests.length).toBe(2);
    const t0 = performance.now();
    await s.close();
    expect(performance.now() - t0).toBeLessThan(5000);
    const res = await pending;
    expect(res.status).toBe(503);
    expect(res.headers.get('connection')).toBe('close');
    expect(await res.json()).toEqual({ detail: 'router shutting down' });
  });

  it('turns an unsendable scripted answer into a 500 instead of crashing', async () => {
    const s = await start({ interceptor: ({ attempt }) => (attempt === 1 ? { status: 200, headers: { 'X-Bad': 'a\nb' } } : undefined) });
    expect((await fetch(s.url + PATHS.publicKey)).status).toBe(500);
    expect((await fetch(s.url + PATHS.publicKey)).status).toBe(200);
  });
});

describe('tamperResponse and model', () => {
  it('lets a test corrupt the sealed answer', async () => {
    const s = await start({
      tamperResponse: (pkg) => ({ ...pkg, encrypted_payload: { ...pkg.encrypted_payload, tag: Buffer.alloc(16).toString('base64') } }),
    });
    const res = await post(s.url, await sealed(s));
    expect(res.status).toBe(200);
    await expect(openPackage(await res.json(), (await clientKey()).pair.privateKey)).rejects.toThrow(/decryption failed/);
  });

  it('sends a string from tamperResponse raw', async () => {
    const s = await start({ tamperResponse: () => 'not a package' });
    expect(await (await post(s.url, await sealed(s))).text()).toBe('not a package');
  });

  it('lets a test replace the model, including with errors', async () => {
    const s = await start({
      model: (request, { payloadId, securityTier }) => {
        if (securityTier === 'maximum') throw new HttpError(403, 'model not allowed for this tier');
        return { not: 'a completion', model: request.model, payloadId };
      },
    });
    const { completion } = await secureCompletion(s.url, CHAT, { [HEADERS.payloadId]: 'fixed-id' });
    expect(completion).toEqual({ not: 'a completion', model: 'test-model', payloadId: 'fixed-id' });
    const refused = await post(s.url, await sealed(s), { [HEADERS.securityTier]: 'maximum' });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ detail: 'model not allowed for this tier' });
  });

  it('answers 500 without internals when the model throws, and logs the error’s name, never its message (it may quote the plaintext)', async () => {
    const logs: string[] = [];
    const s = await start({ model: (request) => { throw new TypeError(`cannot read ${JSON.stringify(request.messages)}`); }, onLog: (e) => logs.push(JSON.stringify(e)) });
    const res = await post(s.url, await sealed(s));
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ detail: 'internal server error' });
    expect(logs.some((line) => line.includes('internal error (TypeError)'))).toBe(true);
    expect(logs.join('\n')).not.toContain(CHAT.messages[0]!.content);
    // Its line says which request it is of: the seq= of the request's own line.
    const events = logs.map((line) => JSON.parse(line) as LogEvent);
    const error = events.find((e) => e.message === 'internal error (TypeError)')!;
    const request = events.find((e) => e.request?.path === '/v1/chat/secure_completion')!;
    expect(request.request!.payload_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(error.fields).toMatchObject({ path: '/v1/chat/secure_completion', seq: request.fields!.seq, payload_id: request.request!.payload_id });
  });
});

describe('rotateKey', () => {
  it('installs a new key: a package sealed to the old one gets 400, a fresh one works', async () => {
    const s = await start({ keySize: 2048 });
    const oldPem = s.publicKeyPem;
    const stale = await sealed(s);
    const rotated = await s.rotateKey();
    expect(rotated.publicKeyPem).not.toBe(oldPem);
    expect(s.publicKeyPem).toBe(rotated.publicKeyPem);
    expect(s.fingerprint).toBe(rotated.fingerprint);
    expect(await (await fetch(s.url + PATHS.publicKey)).text()).toBe(rotated.publicKeyPem);
    const res = await post(s.url, stale);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ detail: 'decryption failed: the package is not authentic or not for this key' });
    expect((await secureCompletion(s.url, CHAT)).completion.object).toBe('chat.completion');
  });
});

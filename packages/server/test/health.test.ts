/** GET /healthz: what a load balancer polls. Public facts only, no API key needed, 503 while draining. */
import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type NomyoServer } from '../src/index.js';
import { VECTOR_KEY_FILE } from './helpers.js';

let server: NomyoServer | undefined;
afterEach(async () => {
  await server?.close({ drainTimeoutMs: 0 });
  server = undefined;
});

describe('GET /healthz', () => {
  it('answers 200 with status, protocols and the key fingerprint, without the API key, and nothing secret', async () => {
    server = await startServer({ keyFile: VECTOR_KEY_FILE, apiKey: 'sk-health-secret', upstreamKey: undefined });
    const res = await fetch(server.url + '/healthz');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ status: 'ok', protocols: [1, 2], key_fingerprint: server.fingerprint, accepted_key_fingerprints: [] });
    expect(server.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(text).not.toContain('sk-health-secret');
    expect(text).not.toContain('PRIVATE');
    // HEAD for probes that want the status alone; anything else is 405.
    expect((await fetch(server.url + '/healthz', { method: 'HEAD' })).status).toBe(200);
    expect((await fetch(server.url + '/healthz', { method: 'POST' })).status).toBe(405);
  });

  it('a v1-only router says so', async () => {
    server = await startServer({ keyFile: VECTOR_KEY_FILE, protocol: 1 });
    expect(await (await fetch(server.url + '/healthz')).json()).toMatchObject({ status: 'ok', protocols: [1] });
  });

  it('is never refused by --max-concurrent', async () => {
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    server = await startServer({ keyFile: VECTOR_KEY_FILE, maxConcurrent: 1, interceptor: async ({ path }) => void (path === '/pki/public_key' && (await held)) });
    const busy = fetch(server.url + '/pki/public_key');
    await expect.poll(() => server!.stats.requests).toBe(1);
    expect((await fetch(server.url + '/pki/public_key')).status).toBe(503);
    expect((await fetch(server.url + '/healthz')).status).toBe(200);
    release();
    expect((await busy).status).toBe(200);
  });
});

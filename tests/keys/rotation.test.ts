import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NomyoServer } from '@nomyo/server';
import { clientFor, hello, publicKeysSent, secureRequests, sleep, startTestServer } from './support.js';

describe('key rotation against the reference server', () => {
  let server: NomyoServer;
  let delays: number[] = [];
  beforeAll(async () => {
    server = await startTestServer({
      interceptor: (req) => (req.path === '/v1/chat/secure_completion' && delays.length ? { delayMs: delays.shift()! } : undefined),
    });
  });
  afterAll(() => server.close());

  it('a rotation during a slow request does not break it; later requests use the new key', async () => {
    server.clearRequests();
    const client = clientFor(server, { keyRotationInterval: 300 });
    const first = await client.client.keyPair();
    delays = [1500];
    const slow = client.create(hello);
    await sleep(900);
    const rotated = await client.client.keyPair();
    expect(rotated.fingerprint).not.toBe(first.fingerprint); // rotated while the request is in flight
    const completion = await slow;
    expect(completion.choices[0]!.message.content).toBe('echo: Hello, secret world');
    await client.create(hello);
    const sent = publicKeysSent(server);
    expect(sent[0]).toBe(first.publicKeyPem);
    expect(sent[1]).not.toBe(first.publicKeyPem);
    expect(secureRequests(server).map((r) => r.response?.status)).toEqual([200, 200]);
    await client.dispose();
  });

  it('50 concurrent requests across rotations all succeed', async () => {
    server.clearRequests();
    const client = clientFor(server, { keyRotationInterval: 300 });
    await client.client.keyPair();
    delays = Array.from({ length: 50 }, (_, i) => (i * 37) % 400);
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, async (_, i) => {
        await sleep(i * 25);
        return client.create({ ...hello, messages: [{ role: 'user', content: `n${i}` }] });
      }),
    );
    const failed = results.filter((r) => r.status === 'rejected');
    expect(failed).toEqual([]);
    expect(results.map((r) => (r as PromiseFulfilledResult<{ choices: { message: { content: string } }[] }>).value.choices[0]!.message.content)).toEqual(
      Array.from({ length: 50 }, (_, i) => `echo: n${i}`),
    );
    expect(new Set(publicKeysSent(server)).size).toBeGreaterThanOrEqual(2);
    expect(secureRequests(server).every((r) => r.response?.status === 200)).toBe(true);
    await client.dispose();
  });
});

/**
 * Choosing the protocol version against the real reference router: what `auto`, `1` and `2` send
 * to a v2 router and to a v1-only one (`protocol: 1`, as deployed routers before v2), that v2 never
 * makes a client key pair, and that no X-Nomyo-Protocol value, however malformed, breaks a request.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createSecureFetch, InvalidArgumentError, SecureChatCompletion, SecureCompletionClient, SecurityError } from '@nomyo/core';
import type { NomyoServer } from '@nomyo/server';
import { clientFor, hello, secureRequests, startTestServer, text } from './support.js';

let v2: NomyoServer;
let v1: NomyoServer;
beforeAll(async () => {
  [v2, v1] = await Promise.all([startTestServer(), startTestServer({ protocol: 1 })]);
});
afterAll(async () => {
  await Promise.all([v2.close(), v1.close()]);
});

const wireVersion = (server: NomyoServer) => JSON.parse(text(secureRequests(server).at(-1)!.body)).version as string;

describe('negotiation', () => {
  it.each([
    { option: undefined, router: 'v2', sent: 2 },
    { option: 'auto', router: 'v2', sent: 2 },
    { option: 2, router: 'v2', sent: 2 },
    { option: 1, router: 'v2', sent: 1 },
    { option: undefined, router: 'v1', sent: 1 },
    { option: 1, router: 'v1', sent: 1 },
  ] as const)('protocol $option against a $router router sends v$sent', async ({ option, router, sent }) => {
    const server = router === 'v2' ? v2 : v1;
    const answer = await clientFor(server, option === undefined ? {} : { protocol: option }).create({ ...hello, security_tier: 'high' });
    expect(answer._metadata.protocol).toBe(sent);
    expect(wireVersion(server)).toBe(`${sent}.0`);
    const wire = secureRequests(server).at(-1)!;
    expect(wire.headers['x-public-key'] !== undefined).toBe(sent === 1);
    expect(wire.headers['x-security-tier']).toBe('high');
  });

  it('protocol: 2 refuses a router that does not advertise 2, before the POST', async () => {
    v1.clearRequests();
    const err = (await clientFor(v1, { protocol: 2 }).create(hello).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(SecurityError);
    expect(err.message).toMatch(/protocol: 2 is required/);
    expect(v1.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /pki/public_key']);
  });

  it('the option is checked at construction by all three entry points', () => {
    for (const protocol of [3, '2', 'v2', null] as never[]) {
      expect(() => new SecureCompletionClient({ routerUrl: v2.url, allowHttp: true, protocol })).toThrow(InvalidArgumentError);
      expect(() => new SecureChatCompletion({ baseUrl: v2.url, allowHttp: true, protocol })).toThrow(InvalidArgumentError);
      expect(() => createSecureFetch({ routerUrl: v2.url, allowHttp: true, protocol })).toThrow(InvalidArgumentError);
    }
    expect(createSecureFetch({ routerUrl: v2.url, allowHttp: true, protocol: 1 }).client.protocol).toBe(1);
  });

  it('the key response says what the router speaks', async () => {
    expect((await clientFor(v2).client.fetchServerPublicKey()).protocols).toEqual([1, 2]);
    expect((await clientFor(v1).client.fetchServerPublicKey()).protocols).toEqual([1]);
  });
});

describe('v2 needs no client key pair', () => {
  // Both ways a pair is made go through Web Crypto: generateKey (two primes) or a PKCS#8 import (four primes).
  const spies = () => {
    const subtle = globalThis.crypto.subtle;
    const generate = vi.spyOn(subtle, 'generateKey');
    const importKey = vi.spyOn(subtle, 'importKey');
    return () =>
      generate.mock.calls.filter(([alg]) => (alg as { name?: string }).name === 'RSA-OAEP').length +
      importKey.mock.calls.filter(([format]) => format === 'pkcs8').length;
  };
  afterEach(() => vi.restoreAllMocks());

  it('a fresh v2 client sends requests without ever making one, and no client key travels; a v1 client makes one', async () => {
    const keyPairsMade = spies();
    v2.clearRequests();
    const client = new SecureChatCompletion({ baseUrl: v2.url, allowHttp: true }); // default key size and multi-prime
    for (let i = 0; i < 3; i++) expect((await client.create(hello))._metadata.protocol).toBe(2);
    expect(keyPairsMade()).toBe(0);
    // On the wire: no X-Public-Key, and nothing but the payload id that differs between the requests.
    const sent = secureRequests(v2);
    expect(sent).toHaveLength(3);
    for (const r of sent) expect(r.headers['x-public-key']).toBeUndefined();
    const varying = (r: (typeof sent)[number]) => Object.keys(r.headers).filter((name) => !['x-payload-id', 'content-length'].includes(name)).map((name) => `${name}: ${String(r.headers[name])}`).sort();
    expect(new Set(sent.map((r) => JSON.stringify(varying(r)))).size).toBe(1);
    await clientFor(v2, { protocol: 1 }).create(hello);
    expect(keyPairsMade()).toBe(1);
  });

  it('with keyDir, v2 neither generates nor writes key files (but remembers the router)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nomyo-v2-'));
    try {
      const keyPairsMade = spies();
      await clientFor(v2, { keyDir: dir }).create(hello);
      expect(keyPairsMade()).toBe(0);
      expect(existsSync(join(dir, 'private_key.pem'))).toBe(false);
      const known = JSON.parse(readFileSync(join(dir, 'known_routers.json'), 'utf8'));
      expect(known.routers[v2.url]).toEqual({ fingerprint: v2.fingerprint, firstSeen: expect.any(String) });
      expect(known.spokeV2[v2.url]).toEqual({ [v2.fingerprint]: expect.any(String) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('malformed X-Nomyo-Protocol values on the key response', () => {
  let value: string | undefined;
  let odd: NomyoServer;
  beforeAll(async () => {
    odd = await startTestServer({
      interceptor: (req) => (req.path === '/pki/public_key' && value !== undefined ? { status: 200, body: odd.publicKeyPem, headers: { 'X-Nomyo-Protocol': value } } : undefined),
    });
  });
  afterAll(() => odd.close());

  it.each([
    ['2,2,9999', 2],
    ['1,2', 2],
    [' 2\t', 2],
    ['', 1],
    [','.repeat(10_000), 1],
    [`1, ${' '.repeat(300)}2`, 1],
    ['2.0', 1],
    ['02', 1],
    ['1, two', 1],
    ['\u00ff\u00fe', 1],
    ['1;2', 1],
  ])('%j → v%i, and the request completes', async (header, sent) => {
    value = header;
    const answer = await clientFor(odd).create(hello);
    expect(answer._metadata.protocol).toBe(sent);
    expect(answer.choices[0]!.message.content).toBe('echo: Hello, secret world');
  });
});

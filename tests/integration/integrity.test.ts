import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { APIError, SecurityError, type ProtocolVersion } from '@nomyo/core';
import { deriveAnswerKey, generateRsaKeyPair, pemToDer, sealAnswerV2, sealPackage, type AnswerPackage } from '@nomyo/core/protocol';
import type { NomyoServer, RequestRecord } from '@nomyo/server';
import type { EncryptedPackage } from '@nomyo/core';
import { spyMemory } from './spy-memory.js';
import { SERVER_KEY_FILE, clientFor, hello, secureRequests, startTestServer, text } from './support.js';

type Sealed = EncryptedPackage & AnswerPackage;
const GENERIC = 'decryption failed: the package is not authentic or not for this key';

// Each protocol's answers are attacked on their own fields: v1 packages (`protocol: 1`), v2 answers (the default here).
describe.each([1, 2] as const)('protocol %i: a tampered or wrong answer never decrypts, and is never returned', (protocol: ProtocolVersion) => {
  let server: NomyoServer;
  let tamper: ((pkg: Sealed, request: RequestRecord) => unknown) | undefined;
  let model: (() => unknown) | undefined;
  beforeAll(async () => {
    server = await startTestServer({
      tamperResponse: (pkg, request) => (tamper ? tamper(pkg as Sealed, request) : pkg),
      model: async (request, ctx) => (model ? model() : (await import('@nomyo/server')).echoModel(request, ctx)),
    });
  });
  afterAll(() => server.close());

  const attempt = async (t?: (pkg: Sealed, request: RequestRecord) => unknown, m?: () => unknown) => {
    tamper = t;
    model = m;
    try {
      return await clientFor(server, { maxRetries: 0, protocol }).create(hello).catch((e: unknown) => e);
    } finally {
      tamper = model = undefined;
    }
  };

  const flip = (b64: string, at = 0) => {
    const bytes = Buffer.from(b64, 'base64');
    bytes[at]! ^= 1;
    return bytes.toString('base64');
  };

  const both: [string, (p: Sealed) => unknown][] = [
    ['a flipped ciphertext bit', (p) => ({ ...p, encrypted_payload: { ...p.encrypted_payload, ciphertext: flip(p.encrypted_payload.ciphertext, 5) } })],
    ['a flipped tag bit', (p) => ({ ...p, encrypted_payload: { ...p.encrypted_payload, tag: flip(p.encrypted_payload.tag) } })],
    ['a flipped nonce bit', (p) => ({ ...p, encrypted_payload: { ...p.encrypted_payload, nonce: flip(p.encrypted_payload.nonce) } })],
    ['a truncated tag', (p) => ({ ...p, encrypted_payload: { ...p.encrypted_payload, tag: Buffer.from(p.encrypted_payload.tag, 'base64').subarray(0, 8).toString('base64') } })],
    ['a missing field', (p) => ({ ...p, encrypted_payload: { ...p.encrypted_payload, nonce: undefined } })],
    ['base64url in the ciphertext', (p) => ({ ...p, encrypted_payload: { ...p.encrypted_payload, ciphertext: p.encrypted_payload.ciphertext.replace(/\+/g, '-').replace(/\//g, '_') + (/[+/]/.test(p.encrypted_payload.ciphertext) ? '' : '-AAA') } })],
    ['a body that is not JSON', () => 'plain text, not a package'],
    ['a plaintext completion instead of a package', () => JSON.stringify({ choices: [{ message: { content: 'trust me' } }] })],
  ];
  const own: Record<ProtocolVersion, [string, (p: Sealed) => unknown][]> = {
    1: [
      ['a flipped wrapped-key bit', (p) => ({ ...p, encrypted_aes_key: flip(p.encrypted_aes_key, 100) })],
      ['no wrapped key', (p) => ({ ...p, encrypted_aes_key: undefined })],
      ['another version', (p) => ({ ...p, version: '2.0' })],
    ],
    2: [
      ['a v2 seal labelled version 1.0', (p) => ({ ...p, version: '1.0' })],
      ['a v2 seal labelled with the v1 algorithm', (p) => ({ ...p, algorithm: 'hybrid-aes256-rsa4096' })],
      ['another payload_algorithm', (p) => ({ ...p, payload_algorithm: 'AES-128-GCM' })],
    ],
  };

  it.each([...both, ...own[protocol]])('%s → SecurityError', async (_name, t) => {
    const err = await attempt(t);
    expect(err).toBeInstanceOf(SecurityError);
    expect((err as SecurityError).code).toBe('ERR_NOMYO_SECURITY');
  });

  it('an answer sealed by anyone but the router that opened this request → SecurityError with the one generic message', async () => {
    const completion = new TextEncoder().encode(JSON.stringify({ choices: [{ message: { content: 'x' } }] }));
    const other = await generateRsaKeyPair(2048, false);
    // v1: sealed to another key pair. v2: sealed for this very payload id, with a key derived from another K.
    const forge = (payloadId: string) =>
      protocol === 1
        ? sealPackage(completion, other.publicKey)
        : deriveAnswerKey(crypto.getRandomValues(new Uint8Array(32)), payloadId, 'encrypt').then((key) => sealAnswerV2(completion, key, payloadId));
    const err = (await attempt((_pkg, request) => forge(String(request.headers['x-payload-id'])))) as SecurityError;
    expect(err).toBeInstanceOf(SecurityError);
    expect(err.message).toBe(GENERIC);
  });

  it.each([
    ['an empty object', () => ({})],
    ['choices that is not an array', () => ({ choices: 'x' })],
    ['a choice without a message', () => ({ choices: [{ text: 'legacy completion' }] })],
    ['an array', () => [1, 2]],
    ['a string', () => 'hello'],
  ])('a decrypted answer that is not a chat.completion (%s) → SecurityError', async (_name, m) => {
    const err = await attempt(undefined, m);
    expect(err).toBeInstanceOf(SecurityError);
    expect((err as Error).message).toMatch(/not a chat.completion/);
  });
});

describe('zeroing, proven on the real buffers', () => {
  const K_BYTES = 32;
  // v2 also hands over its request key K: random when handed, zeroed after; v1's AES key never leaves Web Crypto.
  it.each([1, 2] as const)('protocol %i: zeroes the request plaintext, K and the decrypted answer after use, and never holds them unzeroed', async (protocol) => {
    const server = await startTestServer();
    const handed: Uint8Array[] = [];
    const copies: Uint8Array[] = [];
    const locked: Uint8Array[] = [];
    const spy = spyMemory(handed, copies, locked);
    try {
      const payload = { model: 'm', messages: [{ role: 'user', content: 'zero me please' }] };
      const answer = await clientFor(server, { secureMemory: spy, protocol }).create(payload);
      const requestBytes = new TextEncoder().encode(JSON.stringify(payload)).length;
      const { _metadata, ...completion } = answer;
      const answerBytes = new TextEncoder().encode(JSON.stringify(completion)).length;
      // v2: this request's K, and the next request's, made once this one was over (client/request-keys.ts).
      const expected = protocol === 2 ? [requestBytes, K_BYTES, answerBytes, K_BYTES] : [requestBytes, answerBytes];
      expect(handed.map((v) => v.length)).toEqual(expected);
      // The next K is zeroed as soon as it is wrapped and imported, long before any request uses it.
      await vi.waitFor(() => expect(handed.every((view) => view.every((b) => b === 0))).toBe(true));
      if (protocol === 2) expect(copies.find((c) => c.length === K_BYTES)!.some((b) => b !== 0)).toBe(true);
      // The plaintexts, and v2's K, were written into secure memory from the start (the answer
      // decrypted straight into it, K drawn into an allocation of its own), not locked after the fact.
      expect(locked).toEqual([]);
      expect(_metadata.protocol).toBe(protocol);
    } finally {
      await server.close();
    }
  });

  it('dispose() resolves only once the next request\'s K, made ahead, is zeroed: no secret outlives the client', async () => {
    const server = await startTestServer();
    const handed: Uint8Array[] = [];
    try {
      const client = clientFor(server, { secureMemory: spyMemory(handed) });
      await client.create({ model: 'm', messages: [{ role: 'user', content: 'then dispose' }] });
      await client.dispose();
      expect(handed.filter((v) => v.length === K_BYTES).length).toBeGreaterThanOrEqual(1);
      expect(handed.every((view) => view.every((b) => b === 0))).toBe(true);
    } finally {
      await server.close();
    }
  });

  it.each([1, 2] as const)('protocol %i: a large request sealed and a large answer opened in place: each in one buffer, all zeroed, no plaintext sent', async (protocol) => {
    const server = await startTestServer();
    const handed: Uint8Array[] = [];
    const copies: Uint8Array[] = [];
    try {
      const content = `${'zero me please '.repeat(20_000)}\n"the end"`;
      const answer = await clientFor(server, { secureMemory: spyMemory(handed, copies), protocol }).create({ model: 'm', messages: [{ role: 'user', content }] });
      expect(answer.choices[0]!.message.content).toBe(`echo: ${content}`);
      // (v2: the next request's K too, once made.)
      await vi.waitFor(() => expect(handed.every((view) => view.every((b) => b === 0))).toBe(true));
      // One large buffer for the request (its JSON, then its body in its place) and one for the answer (its body, then its JSON).
      const large = handed.filter((v) => v.length >= 64 * 1024);
      expect(large).toHaveLength(2);
      // As they were when freed: the request's held the body sent and nothing of its plaintext; the answer's, the plaintext opened in it.
      const marker = Buffer.from('zero me please');
      const [requestCopy, answerCopy] = large.map((v) => copies.find((c) => c.length === v.length)!);
      expect(Buffer.from(requestCopy!).indexOf(marker)).toBe(-1);
      expect(Buffer.from(requestCopy!).subarray(0, 40).toString()).toMatch(/^\{"version":"[12]\.0"/);
      expect(Buffer.from(answerCopy!).indexOf(marker)).toBeGreaterThan(-1);
    } finally {
      await server.close();
    }
  });

  it.each([1, 2] as const)('protocol %i: zeroes them on failure too (tampered answer)', async (protocol) => {
    const handed: Uint8Array[] = [];
    const server = await startTestServer({ tamperResponse: () => 'garbage' });
    try {
      const spy = spyMemory(handed);
      await expect(clientFor(server, { secureMemory: spy, maxRetries: 0, protocol }).create(hello)).rejects.toBeInstanceOf(SecurityError);
      expect(handed.map((v) => v.length)).toEqual(protocol === 2 ? [expect.any(Number), K_BYTES, K_BYTES] : [expect.any(Number)]);
      await vi.waitFor(() => expect(handed.every((view) => view.every((b) => b === 0))).toBe(true));
    } finally {
      await server.close();
    }
  });

  it('protocol 2: the next request\'s K is made once a request is over, zeroed at once, and the next request is sent with it', async () => {
    const server = await startTestServer();
    const handed: Uint8Array[] = [];
    try {
      const client = clientFor(server, { secureMemory: spyMemory(handed) });
      await client.create(hello);
      await vi.waitFor(() => expect(handed.every((view) => view.every((b) => b === 0))).toBe(true));
      const before = handed.length;
      const payloadBytes = new TextEncoder().encode(JSON.stringify(hello)).length;
      await client.create(hello);
      // Nothing is drawn between the second request's payload and its answer: its K was ready. The next K follows.
      expect(handed.slice(before).map((v) => v.length)).toEqual([payloadBytes, expect.any(Number), K_BYTES]);
      expect(handed.at(-2)!.length).not.toBe(K_BYTES);
      await vi.waitFor(() => expect(handed.every((view) => view.every((b) => b === 0))).toBe(true));
    } finally {
      await server.close();
    }
  });

  it.each([1, 2] as const)('protocol %i: every request, sequential, streamed or concurrent, is sealed with a key of its own', async (protocol) => {
    const server = await startTestServer();
    try {
      const client = clientFor(server, { protocol });
      const streamed = async () => {
        for await (const _ of await client.create({ ...hello, stream: true }));
      };
      await client.create(hello);
      await client.create(hello);
      await streamed();
      await Promise.all([client.create(hello), client.create(hello), streamed()]);
      // What the router unwraps from each request (v2: K; v1: the AES key), with its own private key.
      const der = pemToDer(readFileSync(SERVER_KEY_FILE, 'utf8'), 'PRIVATE KEY');
      const routerKey = await crypto.subtle.importKey('pkcs8', der, { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['decrypt']);
      const wrapped = secureRequests(server).map((r) => JSON.parse(text(r.body)).encrypted_aes_key as string);
      const keys = await Promise.all(wrapped.map(async (w) => Buffer.from(await crypto.subtle.decrypt({ name: 'RSA-OAEP' }, routerKey, Buffer.from(w, 'base64'))).toString('hex')));
      expect(keys).toHaveLength(6);
      expect(new Set(keys).size).toBe(6);
    } finally {
      await server.close();
    }
  });

  it("a key file's password is in the client's own secure memory while it is used (written and read), then zeroed", async () => {
    const server = await startTestServer();
    const dir = mkdtempSync(join(tmpdir(), 'nomyo-password-'));
    const password = 'correct horse battery staple';
    const encoded = new TextEncoder().encode(password);
    try {
      for (const step of ['written', 'read'] as const) {
        const handed: Uint8Array[] = [];
        const copies: Uint8Array[] = [];
        // v1: the client's key pair is saved to (then loaded from) the key directory, encrypted.
        const client = clientFor(server, { secureMemory: spyMemory(handed, copies), protocol: 1, keySize: 2048, keyDir: dir, keyPassword: password });
        await client.create(hello);
        await client.dispose();
        const held = (c: Uint8Array) => Buffer.from(c).indexOf(encoded) !== -1;
        expect(copies.some(held), step).toBe(true);
        expect(handed.every((view) => view.every((b) => b === 0)), step).toBe(true);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await server.close();
    }
  });

  it('secureMemory: false turns zeroing off and says so', async () => {
    const server = await startTestServer();
    try {
      const client = clientFor(server, { secureMemory: false });
      await client.create(hello);
      expect((await client.client.memoryProtection()).kind).toBe('none');
    } finally {
      await server.close();
    }
  });
});

describe('large requests and answers', () => {
  it('sends a large request with its Content-Length, not chunked, through the runtime\'s fetch and through a fetch option', async () => {
    const server = await startTestServer({ recordRequests: true });
    try {
      const content = 'q'.repeat(300_000);
      const custom = (url: string, init: RequestInit) => fetch(url, init);
      for (const options of [{}, { fetch: custom }]) {
        const answer = await clientFor(server, options).create({ model: 'm', messages: [{ role: 'user', content }] });
        expect(answer.choices[0]!.message.content).toBe(`echo: ${content}`);
        const sent = server.requests.filter((r) => r.method === 'POST').at(-1)!;
        expect(sent.headers['content-length']).toBe(String(sent.bodyLength));
        expect(sent.headers['transfer-encoding']).toBeUndefined();
      }
    } finally {
      await server.close();
    }
  });


  it('concurrent large requests, both protocols, on one client and two: each gets its own answer (buffers in place are never shared)', async () => {
    const server = await startTestServer();
    try {
      const clients = [clientFor(server, { protocol: 1 }), clientFor(server, { protocol: 2 })];
      // Sizes around the in-place threshold and well above it, with escapes and non-ASCII letters.
      const contents = Array.from({ length: 8 }, (_, i) => `${i}: "${'Überweisung\n'.repeat(5_000 * (i + 1))}"`);
      const answers = await Promise.all(contents.map((content, i) => clients[i % 2]!.create({ model: 'm', messages: [{ role: 'user', content }] })));
      answers.forEach((a, i) => expect(a.choices[0]!.message.content).toBe(`echo: ${contents[i]}`));
    } finally {
      await server.close();
    }
  });

  it('a large request the router refuses part-way (413) is an APIError 413, through either fetch', async () => {
    const server = await startTestServer({ bodyLimit: 100_000 });
    try {
      for (const options of [{}, { fetch: (url: string, init: RequestInit) => fetch(url, init) }]) {
        const err = await clientFor(server, { maxRetries: 0, ...options })
          .create({ model: 'm', messages: [{ role: 'user', content: 'z'.repeat(2_000_000) }] })
          .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(APIError);
        expect((err as APIError).status).toBe(413);
      }
    } finally {
      await server.close();
    }
  });

  it('decrypts a 64 MiB answer', async () => {
    const content = 'y'.repeat(64 * 1024 * 1024);
    const server = await startTestServer({
      model: () => ({ id: 'big', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }] }),
    });
    try {
      const answer = await clientFor(server).create(hello);
      expect(answer.choices[0]!.message.content!.length).toBe(content.length);
    } finally {
      await server.close();
    }
  });
});

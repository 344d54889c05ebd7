import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecurityError, type SecureMemory } from '@nomyo/core';
import { generateRsaKeyPair, sealPackage } from '@nomyo/core/protocol';
import type { NomyoServer } from '@nomyo/server';
import type { EncryptedPackage } from '@nomyo/core';
import { clientFor, hello, startTestServer } from './support.js';

describe('a tampered or wrong answer never decrypts, and is never returned', () => {
  let server: NomyoServer;
  let tamper: ((pkg: EncryptedPackage) => unknown) | undefined;
  let model: (() => unknown) | undefined;
  beforeAll(async () => {
    server = await startTestServer({
      tamperResponse: (pkg) => (tamper ? tamper(pkg) : pkg),
      model: async (request, ctx) => (model ? model() : (await import('@nomyo/server')).echoModel(request, ctx)),
    });
  });
  afterAll(() => server.close());

  const attempt = async (t?: (pkg: EncryptedPackage) => unknown, m?: () => unknown) => {
    tamper = t;
    model = m;
    try {
      return await clientFor(server, { maxRetries: 0 }).create(hello).catch((e: unknown) => e);
    } finally {
      tamper = model = undefined;
    }
  };

  const flip = (b64: string, at = 0) => {
    const bytes = Buffer.from(b64, 'base64');
    bytes[at]! ^= 1;
    return bytes.toString('base64');
  };

  it.each([
    ['a flipped ciphertext bit', (p: EncryptedPackage) => ({ ...p, encrypted_payload: { ...p.encrypted_payload, ciphertext: flip(p.encrypted_payload.ciphertext, 5) } })],
    ['a flipped tag bit', (p: EncryptedPackage) => ({ ...p, encrypted_payload: { ...p.encrypted_payload, tag: flip(p.encrypted_payload.tag) } })],
    ['a flipped nonce bit', (p: EncryptedPackage) => ({ ...p, encrypted_payload: { ...p.encrypted_payload, nonce: flip(p.encrypted_payload.nonce) } })],
    ['a flipped wrapped-key bit', (p: EncryptedPackage) => ({ ...p, encrypted_aes_key: flip(p.encrypted_aes_key, 100) })],
    ['a truncated tag', (p: EncryptedPackage) => ({ ...p, encrypted_payload: { ...p.encrypted_payload, tag: Buffer.from(p.encrypted_payload.tag, 'base64').subarray(0, 8).toString('base64') } })],
    ['a missing field', (p: EncryptedPackage) => ({ ...p, encrypted_aes_key: undefined })],
    ['another version', (p: EncryptedPackage) => ({ ...p, version: '2.0' })],
    ['base64url in the ciphertext', (p: EncryptedPackage) => ({ ...p, encrypted_payload: { ...p.encrypted_payload, ciphertext: p.encrypted_payload.ciphertext.replace(/\+/g, '-').replace(/\//g, '_') + (/[+/]/.test(p.encrypted_payload.ciphertext) ? '' : '-AAA') } })],
    ['a body that is not JSON', () => 'plain text, not a package'],
    ['a plaintext completion instead of a package', () => JSON.stringify({ choices: [{ message: { content: 'trust me' } }] })],
  ])('%s → SecurityError', async (_name, t) => {
    const err = await attempt(t);
    expect(err).toBeInstanceOf(SecurityError);
    expect((err as SecurityError).code).toBe('ERR_NOMYO_SECURITY');
  });

  it('an answer sealed to another key → SecurityError with the one generic message', async () => {
    const other = await generateRsaKeyPair(2048, false);
    const foreign = await sealPackage(new TextEncoder().encode(JSON.stringify({ choices: [{ message: { content: 'x' } }] })), other.publicKey);
    const err = (await attempt(() => foreign)) as SecurityError;
    expect(err).toBeInstanceOf(SecurityError);
    expect(err.message).toBe('decryption failed: the package is not authentic or not for this key');
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

/** Zeroing-only memory that remembers every buffer it was handed, so the test can look at them afterwards. */
function spyMemory(handed: Uint8Array[]): SecureMemory {
  return {
    kind: 'js',
    lock: (view) => (handed.push(view), false),
    unlock: (view) => view.fill(0),
    zero: (view) => view.fill(0),
    alloc: (size) => new Uint8Array(size),
    free: (view) => view.fill(0),
    info: () => ({ kind: 'js', locking: false, dumpExclusion: false, reason: 'test spy' }),
  };
}

describe('zeroing, proven on the real buffers', () => {
  it('zeroes the request plaintext and the decrypted answer after use, and never holds them unzeroed', async () => {
    const server = await startTestServer();
    const handed: Uint8Array[] = [];
    const spy = spyMemory(handed);
    try {
      const payload = { model: 'm', messages: [{ role: 'user', content: 'zero me please' }] };
      const answer = await clientFor(server, { secureMemory: spy }).create(payload);
      const requestBytes = new TextEncoder().encode(JSON.stringify(payload)).length;
      const { _metadata, ...completion } = answer;
      const answerBytes = new TextEncoder().encode(JSON.stringify(completion)).length;
      expect(handed.map((v) => v.length).sort()).toEqual([requestBytes, answerBytes].sort());
      for (const view of handed) expect(view.every((b) => b === 0)).toBe(true);
      expect(_metadata.is_encrypted).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('zeroes them on failure too (tampered answer)', async () => {
    const handed: Uint8Array[] = [];
    const server = await startTestServer({ tamperResponse: () => 'garbage' });
    try {
      const spy = spyMemory(handed);
      await expect(clientFor(server, { secureMemory: spy, maxRetries: 0 }).create(hello)).rejects.toBeInstanceOf(SecurityError);
      expect(handed).toHaveLength(1);
      expect(handed[0]!.every((b) => b === 0)).toBe(true);
    } finally {
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

describe('large answers', () => {
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

/** Every malformed request gets a 4xx with a JSON detail, and the server keeps serving. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEADERS, PATHS, derToPem, encodeBase64, generateRsaKeyPair, parseServerKey, sealPackage } from '@nomyo/core/protocol';
import { startServer, type NomyoServer } from '../src/index.js';
import { CHAT, VECTOR_KEY_FILE, post, sealRequest, secureCompletion } from './helpers.js';

let server: NomyoServer;
let valid: string;
beforeAll(async () => {
  server = await startServer({ keyFile: VECTOR_KEY_FILE, bodyLimit: 64 * 1024 });
  valid = JSON.stringify(await sealRequest(server.publicKeyPem, CHAT));
});
afterAll(() => server.close());

async function expectDetail(res: Response, status: number, pattern?: RegExp): Promise<void> {
  expect(res.status).toBe(status);
  expect(res.headers.get('access-control-allow-origin')).toBe('*');
  const body = (await res.json()) as { detail?: unknown };
  expect(typeof body.detail).toBe('string');
  if (pattern) expect(body.detail).toMatch(pattern);
  // The server is still healthy afterwards.
  expect((await fetch(server.url + PATHS.publicKey)).status).toBe(200);
}

async function sealedRaw(plaintext: string): Promise<string> {
  const { key } = await parseServerKey(server.publicKeyPem);
  return JSON.stringify(await sealPackage(new TextEncoder().encode(plaintext), key));
}

describe('malformed requests', () => {
  const mutate = (f: (pkg: any) => void): string => {
    const pkg = JSON.parse(valid);
    f(pkg);
    return JSON.stringify(pkg);
  };

  it.each([
    ['empty body', () => '', /not JSON/],
    ['not JSON', () => '{nope', /not JSON/],
    ['not UTF-8', () => new Uint8Array([0xff, 0xfe, 0x7b]), /UTF-8/],
    ['a JSON array', () => '[]', /not a JSON object/],
    ['unknown version', () => mutate((p) => (p.version = '3.0')), /version/],
    // A v2 router opens "2.0" as v2: a v1 seal (no associated data) does not open as one.
    ['a v1 package labelled 2.0', () => mutate((p) => (p.version = '2.0')), /decryption failed/],
    ['wrong algorithm', () => mutate((p) => (p.algorithm = 'rot13')), /algorithm/],
    ['no encrypted_payload', () => mutate((p) => delete p.encrypted_payload), /encrypted_payload/],
    ['no tag', () => mutate((p) => delete p.encrypted_payload.tag), /tag/],
    ['no wrapped key', () => mutate((p) => delete p.encrypted_aes_key), /encrypted_aes_key/],
    ['bad base64', () => mutate((p) => (p.encrypted_payload.ciphertext = 'not*base64!')), /base64/],
    ['short nonce', () => mutate((p) => (p.encrypted_payload.nonce = encodeBase64(new Uint8Array(8)))), /nonce/],
    ['tampered ciphertext', () => mutate((p) => (p.encrypted_payload.ciphertext = encodeBase64(new Uint8Array(20)))), /decryption failed/],
    ['tampered tag', () => mutate((p) => (p.encrypted_payload.tag = encodeBase64(new Uint8Array(16)))), /decryption failed/],
  ])('%s → 400', async (_name, body, pattern) => {
    await expectDetail(await post(server.url, body()), 400, pattern);
  });

  it.each([
    ['not JSON', 'hello', /not UTF-8 JSON/],
    ['not an object', '[1,2]', /not a JSON object/],
    ['no model', JSON.stringify({ messages: [{ role: 'user', content: 'x' }] }), /model/],
    ['no messages', JSON.stringify({ model: 'm' }), /messages/],
    ['stream not a boolean', JSON.stringify({ ...CHAT, stream: 'yes' }), /stream must be a boolean/],
    ['tools not an array', JSON.stringify({ ...CHAT, tools: {} }), /tools/],
  ])('decrypted request %s → 400', async (_name, plaintext, pattern) => {
    await expectDetail(await post(server.url, await sealedRaw(plaintext)), 400, pattern);
  });

  it.each([
    ['missing X-Payload-ID', { [HEADERS.payloadId]: undefined }, /X-Payload-ID/],
    ['over-long X-Payload-ID', { [HEADERS.payloadId]: 'x'.repeat(200) }, /X-Payload-ID/],
    ['missing X-Public-Key', { [HEADERS.publicKey]: undefined }, /X-Public-Key/],
    ['X-Public-Key bad percent-encoding', { [HEADERS.publicKey]: '%E0%A4%A' }, /percent/],
    ['X-Public-Key not PEM', { [HEADERS.publicKey]: 'hello' }, /SPKI PEM/],
    ['X-Public-Key garbage PEM', { [HEADERS.publicKey]: encodeURIComponent('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----') }, /RSA/],
    ['unknown security tier', { [HEADERS.securityTier]: 'ultra' }, /X-Security-Tier/],
  ])('%s → 400', async (_name, headers, pattern) => {
    await expectDetail(await post(server.url, valid, headers), 400, pattern);
  });

  it('refuses a client key under 2048 bits', async () => {
    const small = await crypto.subtle.generateKey(
      { name: 'RSA-OAEP', hash: 'SHA-256', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]) },
      true,
      ['encrypt', 'decrypt'],
    );
    const pem = derToPem(new Uint8Array(await crypto.subtle.exportKey('spki', small.publicKey)), 'PUBLIC KEY');
    await expectDetail(await post(server.url, valid, { [HEADERS.publicKey]: encodeURIComponent(pem) }), 400, /2048/);
  });

  it('refuses a package sealed to another key', async () => {
    const other = await generateRsaKeyPair(2048, false);
    const otherPem = derToPem(new Uint8Array(await crypto.subtle.exportKey('spki', other.publicKey)), 'PUBLIC KEY');
    await expectDetail(await post(server.url, JSON.stringify(await sealRequest(otherPem, CHAT))), 400, /decryption failed/);
  });

  it('unknown path → 404, wrong method → 405 with Allow', async () => {
    await expectDetail(await fetch(server.url + '/v1/chat/completions', { method: 'POST', body: '{}' }), 404);
    const wrongKey = await fetch(server.url + PATHS.publicKey, { method: 'POST', body: 'x' });
    expect(wrongKey.headers.get('allow')).toBe('GET, OPTIONS');
    await expectDetail(wrongKey, 405);
    const wrongSecure = await fetch(server.url + PATHS.secureCompletion);
    expect(wrongSecure.headers.get('allow')).toBe('POST, OPTIONS');
    await expectDetail(wrongSecure, 405);
  });

  it('a body over the limit → 413', async () => {
    await expectDetail(await post(server.url, 'x'.repeat(64 * 1024 + 1)), 413, /exceeds/);
    // Exactly at the limit is read (and then refused as a package, not for its size).
    await expectDetail(await post(server.url, 'x'.repeat(64 * 1024)), 400);
  });

  it('a query string does not change the route', async () => {
    expect((await fetch(server.url + PATHS.publicKey + '?x=1')).status).toBe(200);
  });

  it('still completes after all of the above', async () => {
    const { completion } = await secureCompletion(server.url, CHAT);
    expect(completion.choices[0].message.content).toBe('echo: hello there world');
  });
});

describe('API key', () => {
  let guarded: NomyoServer;
  beforeAll(async () => {
    guarded = await startServer({ keyFile: VECTOR_KEY_FILE, apiKey: 'sk-test-123' });
  });
  afterAll(() => guarded.close());

  it('answers 401 without or with a wrong key, 200 with the right one', async () => {
    const body = JSON.stringify(await sealRequest(guarded.publicKeyPem, CHAT));
    const missing = await post(guarded.url, body);
    expect(missing.status).toBe(401);
    expect(await missing.json()).toEqual({ detail: 'missing API key' });
    const wrong = await post(guarded.url, body, { Authorization: 'Bearer sk-wrong' });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({ detail: 'invalid API key' });
    const { completion } = await secureCompletion(guarded.url, CHAT, { Authorization: 'Bearer sk-test-123' });
    expect(completion.object).toBe('chat.completion');
  });

  it('leaves the public key endpoint open', async () => {
    expect((await fetch(guarded.url + PATHS.publicKey)).status).toBe(200);
  });
});

describe('CORS', () => {
  it('answers a preflight with 204 and the allowed methods and headers', async () => {
    const res = await fetch(server.url + PATHS.secureCompletion, {
      method: 'OPTIONS',
      headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'x-public-key, x-payload-id' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-methods')).toBe('GET, POST, OPTIONS');
    const allowed = res.headers.get('access-control-allow-headers')?.toLowerCase().split(/, */);
    expect(allowed).toEqual(expect.arrayContaining(['content-type', 'x-payload-id', 'x-public-key', 'x-security-tier', 'authorization']));
    expect(res.headers.get('access-control-expose-headers')).toMatch(/X-Processing-Time-Ms/);
    expect(await res.text()).toBe('');
  });

  it('puts the CORS headers on successful answers too', async () => {
    const { res } = await secureCompletion(server.url, CHAT);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-expose-headers')).toMatch(/Retry-After/);
    // A proxy's request id, which a page's error reads as `requestId`.
    expect(res.headers.get('access-control-expose-headers')?.split(/, */)).toContain('X-Request-ID');
  });
});

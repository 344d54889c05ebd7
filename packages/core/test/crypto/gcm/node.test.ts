import { KeyObject, hkdfSync, randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { generateAesKey } from '../../../src/crypto/aes-gcm.js';
import { generateRsaKeyPair, unwrapAesKey } from '../../../src/crypto/rsa.js';
import { deriveAnswerKey } from '../../../src/protocol/v2.js';
import { webCryptoGcm } from '../../../src/crypto/gcm/browser.js';
import { gcmPieces as nodeGcm } from '../../../src/crypto/gcm/node.js';
import { gcmPieces, importAesKey } from '../../../src/crypto/gcm/select.js';
import { isNodeAesKey, type AesKey, type GcmPieces } from '../../../src/crypto/gcm/types.js';
import { V2_ANSWER_KEY_INFO_PREFIX } from '../../../src/protocol/constants.js';
import type { Bytes } from '../../../src/crypto/subtle.js';
import { SecurityError } from '../../../src/errors.js';

const GENERIC = 'decryption failed: the package is not authentic or not for this key';
const bytes = (n: number) => new Uint8Array(randomBytes(n)) as Bytes;

/** Extractable, as core makes its payload keys in Node.js (PAYLOAD_KEYS_EXTRACTABLE): node:crypto takes only those. */
async function key(usages: KeyUsage[], length = 256, extractable = true): Promise<CryptoKey> {
  return crypto.subtle.importKey('raw', bytes(length / 8), { name: 'AES-GCM' }, extractable, usages);
}

/** Web Crypto's own ciphertext||tag, the reference. */
async function reference(k: CryptoKey, nonce: Bytes, aad: Bytes | undefined, plaintext: Bytes): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv: nonce, ...(aad ? { additionalData: aad } : {}) }, k, plaintext));
}

async function sealAll(impl: GcmPieces, k: AesKey, nonce: Bytes, aad: Bytes | undefined, plaintext: Uint8Array) {
  const pieces: number[] = [];
  const out: Uint8Array[] = [];
  const tag = await impl.seal(k, nonce, aad, plaintext, (p) => (pieces.push(p.length), out.push(p.slice())));
  return { ciphertext: Buffer.concat(out), tag, pieces };
}

describe.each([
  ['node:crypto in pieces', nodeGcm],
  ['Web Crypto', webCryptoGcm],
] as const)('#gcm: %s', (_name, impl) => {
  it.each([0, 1, 49151, 49152, 49153, 200_001])('seals %i bytes exactly as Web Crypto does, in pieces of whole base64 quads', async (n) => {
    const k = await key(['encrypt', 'decrypt']);
    const nonce = bytes(12);
    const plaintext = bytes(n);
    for (const aad of [undefined, new TextEncoder().encode('nomyo/2 request\nid\n') as Bytes]) {
      const { ciphertext, tag, pieces } = await sealAll(impl, k, nonce, aad, plaintext);
      expect(Buffer.concat([ciphertext, tag])).toEqual(Buffer.from(await reference(k, nonce, aad, plaintext)));
      expect(pieces.slice(0, -1).every((p) => p % 3 === 0)).toBe(true);
    }
  });

  it('opens what Web Crypto sealed, fed in any pieces', async () => {
    const k = await key(['encrypt', 'decrypt']);
    const nonce = bytes(12);
    const aad = bytes(20);
    const plaintext = bytes(150_000);
    const sealed = await reference(k, nonce, aad, plaintext);
    const ct = sealed.subarray(0, plaintext.length);
    const target = new Uint8Array(plaintext.length);
    const feed = (sink: (p: Uint8Array) => void) => {
      for (let i = 0; i < ct.length; i += 7001) sink(ct.subarray(i, Math.min(i + 7001, ct.length)));
    };
    const opened = await impl.open(k, nonce, aad, sealed.subarray(plaintext.length) as Bytes, ct.length, feed, target);
    expect(Buffer.from(opened)).toEqual(Buffer.from(plaintext));
    expect(opened === target).toBe(impl.streaming);
  });

  it('refuses a wrong tag, nonce, associated data or key with the one generic message, and leaves the target zeroed', async () => {
    const k = await key(['encrypt', 'decrypt']);
    const nonce = bytes(12);
    const plaintext = bytes(100_000);
    const sealed = await reference(k, nonce, undefined, plaintext);
    const ct = sealed.subarray(0, plaintext.length);
    const tag = sealed.slice(plaintext.length) as Bytes;
    const badTag = tag.slice() as Bytes;
    badTag[0]! ^= 1;
    const cases: Array<[CryptoKey, Bytes, Bytes | undefined, Bytes]> = [
      [k, nonce, undefined, badTag],
      [k, bytes(12), undefined, tag],
      [k, nonce, bytes(3), tag],
      [await key(['decrypt']), nonce, undefined, tag],
      [await key(['decrypt'], 128), nonce, undefined, tag],
      [await key(['encrypt']), nonce, undefined, tag],
    ];
    for (const [kk, n, aad, t] of cases) {
      const target = new Uint8Array(plaintext.length);
      const err = await impl.open(kk, n, aad, t, ct.length, (sink) => sink(ct), target).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SecurityError);
      expect((err as Error).message).toBe(GENERIC);
      expect(target.every((b) => b === 0)).toBe(true);
    }
  });

  it('passes through what the feed throws, and zeroes what was written before it', async () => {
    const k = await key(['encrypt', 'decrypt']);
    const nonce = bytes(12);
    const plaintext = bytes(100_000);
    const sealed = await reference(k, nonce, undefined, plaintext);
    const target = new Uint8Array(plaintext.length);
    const boom = new SecurityError('malformed package: invalid base64');
    const feed = (sink: (p: Uint8Array) => void) => {
      sink(sealed.subarray(0, 60_000));
      throw boom;
    };
    await expect(impl.open(k, nonce, undefined, sealed.slice(plaintext.length) as Bytes, plaintext.length, feed, target)).rejects.toBe(boom);
    expect(target.every((b) => b === 0)).toBe(true);
  });
});

it('in Node.js, #gcm streams through node:crypto (the tests above then ran both ways)', () => {
  expect(nodeGcm.streaming).toBe(true);
});

describe('in Node.js, the keys node:crypto gets', () => {
  // Spied on only while these tests run (it still calls through).
  let from: MockInstance<typeof KeyObject.from>;
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  beforeAll(() => void (from = vi.spyOn(KeyObject, 'from')));
  beforeEach(() => (from.mockClear(), (warnings.length = 0), process.on('warning', onWarning)));
  afterEach(() => void process.off('warning', onWarning));
  afterAll(() => from.mockRestore());

  /** Seals with `sealKey` (Web Crypto) and opens with `openKey` through node:crypto in pieces; true if it streamed. */
  async function streams(sealKey: CryptoKey, openKey: CryptoKey): Promise<boolean> {
    const nonce = bytes(12);
    const plaintext = bytes(100_000);
    const sealed = await reference(sealKey, nonce, undefined, plaintext);
    const target = new Uint8Array(plaintext.length);
    const web = vi.spyOn(webCryptoGcm, 'open');
    try {
      const opened = await nodeGcm.open(openKey, nonce, undefined, sealed.slice(plaintext.length) as Bytes, plaintext.length, (sink) => sink(sealed.subarray(0, plaintext.length)), target);
      expect(Buffer.from(opened)).toEqual(Buffer.from(plaintext));
      // Into `target` either way (callers rely on it): what Web Crypto returned is copied there and zeroed.
      expect(opened).toBe(target);
      for (const result of web.mock.results) expect(new Uint8Array(await (result.value as Promise<Uint8Array>)).every((b) => b === 0)).toBe(true);
      return web.mock.calls.length === 0;
    } finally {
      web.mockRestore();
    }
  }

  it('v1\'s payload keys (CryptoKeys, request and answer) are streamed, each handed over once', async () => {
    const pair = await generateRsaKeyPair(2048, false);
    const v1 = await generateAesKey();
    const unwrapped = await unwrapAesKey(new Uint8Array(await crypto.subtle.wrapKey('raw', v1, pair.publicKey, { name: 'RSA-OAEP' })) as Bytes, pair.privateKey);
    expect(await streams(v1, unwrapped)).toBe(true);
    expect(await streams(v1, unwrapped)).toBe(true);
    const plaintext = bytes(1000);
    for (let i = 0; i < 2; i++) {
      const nonce = bytes(12);
      const { ciphertext, tag } = await sealAll(nodeGcm, v1, nonce, undefined, plaintext);
      expect(Buffer.concat([ciphertext, tag])).toEqual(Buffer.from(await reference(v1, nonce, undefined, plaintext)));
    }
    // The opening key and the sealing key, each once for its two payloads.
    expect(from.mock.calls.filter(([key]) => key.algorithm.name === 'AES-GCM')).toHaveLength(2);
    expect(warnings).toEqual([]);
  });

  it('v2\'s payload keys (K, and the answer key HKDF derives) are node:crypto keys from the start, and seal and open as Web Crypto does with the same bytes', async () => {
    const k = bytes(32);
    const answerBytes = new Uint8Array(hkdfSync('sha256', k, new Uint8Array(0), V2_ANSWER_KEY_INFO_PREFIX + 'id-1', 32));
    const web = (raw: Uint8Array) => crypto.subtle.importKey('raw', raw as Bytes, 'AES-GCM', false, ['encrypt']);
    const cases: Array<[CryptoKey, AesKey, AesKey]> = [
      [await web(k), await importAesKey(k, 'encrypt'), await importAesKey(k, 'decrypt')],
      [await web(answerBytes), await deriveAnswerKey(k, 'id-1', 'encrypt'), await deriveAnswerKey(k, 'id-1', 'decrypt')],
    ];
    for (const [webKey, sealKey, openKey] of cases) {
      expect(isNodeAesKey(sealKey) && isNodeAesKey(openKey)).toBe(true);
      const nonce = bytes(12);
      const aad = bytes(30);
      const plaintext = bytes(100_000);
      const { ciphertext, tag } = await sealAll(nodeGcm, sealKey, nonce, aad, plaintext);
      const sealed = await reference(webKey, nonce, aad, plaintext);
      expect(Buffer.concat([ciphertext, tag])).toEqual(Buffer.from(sealed));
      const target = new Uint8Array(plaintext.length);
      const opened = await nodeGcm.open(openKey, nonce, aad, tag, ciphertext.length, (sink) => sink(ciphertext), target);
      expect(opened).toBe(target);
      expect(Buffer.from(opened)).toEqual(Buffer.from(plaintext));
    }
    expect(from).not.toHaveBeenCalled();
    expect(warnings).toEqual([]);
  });

  it('a node:crypto key keeps its own copy of the bytes, and does only what it was made for', async () => {
    const k = bytes(32);
    const reference_ = await crypto.subtle.importKey('raw', k, 'AES-GCM', false, ['encrypt']);
    const sealKey = await importAesKey(k, 'encrypt');
    const openKey = await importAesKey(k, 'decrypt');
    k.fill(0); // as the caller zeroes `K`
    const nonce = bytes(12);
    const plaintext = bytes(64);
    const { ciphertext, tag } = await sealAll(nodeGcm, sealKey, nonce, undefined, plaintext);
    expect(Buffer.concat([ciphertext, tag])).toEqual(Buffer.from(await reference(reference_, nonce, undefined, plaintext)));
    await expect(sealAll(nodeGcm, openKey, nonce, undefined, plaintext)).rejects.toThrow(TypeError);
    // Opening with the sealing key is refused as any failure to open is: the one opaque error.
    const target = new Uint8Array(plaintext.length);
    await expect(nodeGcm.open(sealKey, nonce, undefined, tag, ciphertext.length, (sink) => sink(ciphertext), target)).rejects.toThrow(GENERIC);
    await expect(webCryptoGcm.seal(sealKey, nonce, undefined, plaintext, () => undefined)).rejects.toThrow(TypeError);
    await expect(importAesKey(bytes(16), 'encrypt')).rejects.toThrow(SecurityError);
  });

  it('a non-extractable key goes to Web Crypto: KeyObject.from would warn (DEP0204, Node.js 24) or throw', async () => {
    const k = await key(['encrypt', 'decrypt'], 256, false);
    expect(await streams(k, k)).toBe(false);
    const target = new Uint8Array(10);
    const tag = await nodeGcm.seal(k, bytes(12), undefined, target, () => undefined);
    expect(tag).toHaveLength(16);
    expect(from).not.toHaveBeenCalled();
    expect(warnings).toEqual([]);
  });
});

describe('the pieces a runtime gets', () => {
  it('in Node.js, the streaming node:crypto ones, loaded through #gcm', async () => {
    const selected = await gcmPieces();
    expect(selected.streaming).toBe(true);
    expect(selected).not.toBe(webCryptoGcm);
  });
});

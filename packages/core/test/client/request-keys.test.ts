import { beforeAll, describe, expect, it, vi } from 'vitest';
import { NextRequestKeys } from '../../src/client/request-keys.js';
import { SecureByteContext } from '../../src/memory/context.js';
import { JsSecureMemory } from '../../src/memory/js-memory.js';
import { generateRsaKeyPair, rsaDecryptKey } from '../../src/crypto/rsa.js';
import { decodeBase64 } from '../../src/protocol/base64.js';
import type { Bytes } from '../../src/crypto/subtle.js';


/** Secure memory that counts the K it is asked for, and keeps each to check it was zeroed. */
function countingContext(): { secure: SecureByteContext; ks: Uint8Array[] } {
  const ks: Uint8Array[] = [];
  const memory = new JsSecureMemory();
  const alloc = memory.alloc.bind(memory);
  memory.alloc = (size: number) => {
    const bytes = alloc(size);
    ks.push(bytes);
    return bytes;
  };
  return { secure: new SecureByteContext(memory), ks };
}

let router: CryptoKeyPair;
let other: CryptoKeyPair;

beforeAll(async () => {
  [router, other] = await Promise.all([generateRsaKeyPair(2048, false), generateRsaKeyPair(2048, false)]);
});

/** The key inside a request key (v2's K, v1's AES key), as the router unwraps it. */
async function unwrapped(key: { wrapped: string }, privateKey: CryptoKey): Promise<string> {
  return Buffer.from(await rsaDecryptKey(decodeBase64(key.wrapped) as Bytes, privateKey)).toString('hex');
}

describe('NextRequestKeys: the next v2 request\'s K, made ahead', () => {
  it('makes a fresh K for each take until it is refilled; the K made ahead goes to the next request, and only to it', async () => {
    const { secure, ks } = countingContext();
    const reserve = new NextRequestKeys().v2;
    const first = await reserve.take(router.publicKey, secure);
    expect(ks).toHaveLength(1);
    reserve.refill();
    // Made at once, before any request asks: the request that takes it makes none of its own.
    expect(ks).toHaveLength(2);
    const second = await reserve.take(router.publicKey, secure);
    expect(ks).toHaveLength(2);
    // A second take before the next refill makes its own: two requests never share a K.
    const third = await reserve.take(router.publicKey, secure);
    expect(ks).toHaveLength(3);
    const k = await Promise.all([first, second, third].map((key) => unwrapped(key, router.privateKey)));
    expect(new Set(k).size).toBe(3);
    for (const key of [first, second, third]) expect(key.recipient).toBe(router.publicKey);
    // Each K's bytes were zeroed once it was wrapped and imported.
    for (const bytes of ks) expect(bytes.every((b) => b === 0)).toBe(true);
  });

  it('never hands a K made for one router key to a request for another', async () => {
    const { secure, ks } = countingContext();
    const reserve = new NextRequestKeys().v2;
    await reserve.take(router.publicKey, secure);
    reserve.refill();
    const forOther = await reserve.take(other.publicKey, secure);
    expect(ks).toHaveLength(3);
    expect(forOther.recipient).toBe(other.publicKey);
    await expect(unwrapped(forOther, other.privateKey)).resolves.toMatch(/^[0-9a-f]{64}$/);
  });

  it('refills once however often it is asked, and not at all before a first request or after close', async () => {
    const { secure, ks } = countingContext();
    const reserve = new NextRequestKeys().v2;
    reserve.refill();
    expect(ks).toHaveLength(0);
    await reserve.take(router.publicKey, secure);
    reserve.refill();
    reserve.refill();
    expect(ks).toHaveLength(2);
    reserve.close();
    reserve.refill();
    expect(ks).toHaveLength(2);
    // A closed reserve still gives a fresh K (the client refuses calls once disposed anyway).
    await reserve.take(router.publicKey, secure);
    expect(ks).toHaveLength(3);
  });

  it('a K that cannot be made ahead costs nothing: the next request makes its own, and reports why it fails', async () => {
    const { secure } = countingContext();
    const reserve = new NextRequestKeys().v2;
    const unusable = router.privateKey; // a private key cannot encrypt
    await expect(reserve.take(unusable, secure)).rejects.toThrow();
    reserve.refill(); // fails in the background, never unhandled
    await expect(reserve.take(unusable, secure)).rejects.toThrow();
  });
});

describe('NextRequestKeys: the next v1 request\'s AES key, made ahead', () => {
  it('goes to the next request for the same router key only, a fresh one otherwise; refill() makes the key of each version used', async () => {
    const { secure, ks } = countingContext();
    const keys = new NextRequestKeys();
    const made = vi.spyOn(crypto.subtle, 'generateKey');
    const first = await keys.v1.take(router.publicKey, secure);
    keys.refill();
    expect(made).toHaveBeenCalledTimes(2);
    const second = await keys.v1.take(router.publicKey, secure);
    expect(made).toHaveBeenCalledTimes(2);
    const third = await keys.v1.take(router.publicKey, secure);
    keys.refill();
    const forOther = await keys.v1.take(other.publicKey, secure);
    expect(made).toHaveBeenCalledTimes(5);
    made.mockRestore();
    const k = await Promise.all([first, second, third].map((key) => unwrapped(key, router.privateKey)));
    expect(new Set(k).size).toBe(3);
    expect(forOther.recipient).toBe(other.publicKey);
    await expect(unwrapped(forOther, other.privateKey)).resolves.toMatch(/^[0-9a-f]{64}$/);
    // v1's key is made inside Web Crypto (no K in secure memory), and v2's reserve, never used, made none.
    expect(ks).toHaveLength(0);
    keys.close();
  });
});

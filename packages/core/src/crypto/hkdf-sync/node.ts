/**
 * `#hkdf-sync` in Node.js: node:crypto's HKDF-SHA256, at once on this thread. Web Crypto's
 * deriveKey and deriveBits go through the thread pool, a round trip that costs more than the
 * derivation (about 0.7 ms for a streamed answer's two keys, on the way to its first token). The
 * input key material is held as node:crypto's KeyObject, made from its bytes at once (Web Crypto's
 * importKey took a process back from idle 0.28 ms, on the router's way from the RSA decryption to
 * the upstream call).
 */
import * as nodeCrypto from 'node:crypto';
import type { Bytes } from '../subtle.js';

export const available = typeof nodeCrypto.createSecretKey === 'function' && typeof nodeCrypto.hkdfSync === 'function';

/** `ikm` as the input key material of {@link hkdfSync} (the bytes are copied: the caller zeroes its own). */
export function secretKey(ikm: Bytes): object {
  return nodeCrypto.createSecretKey(ikm);
}

/** HKDF-SHA256 of `base` (made by {@link secretKey}) to `length` bytes. */
export function hkdfSync(base: object, salt: Bytes, info: Bytes, length: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(nodeCrypto.hkdfSync('sha256', base as nodeCrypto.KeyObject, salt, info, length));
}

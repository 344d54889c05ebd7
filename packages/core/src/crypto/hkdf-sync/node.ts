/**
 * `#hkdf-sync` in Node.js: node:crypto's HKDF-SHA256, at once on this thread. Web Crypto's
 * deriveKey and deriveBits go through the thread pool, a round trip that costs more than the
 * derivation (about 0.7 ms for a streamed answer's two keys, on the way to its first token). The
 * base key is a CryptoKey that node:crypto can take as a KeyObject without its bytes reaching
 * JavaScript: Web Crypto refuses to make an HKDF key extractable, so hkdf.ts holds `K` as an
 * extractable HMAC-SHA256 key here (in Node.js non-extractable protects nothing: see
 * PAYLOAD_KEYS_EXTRACTABLE).
 */
import * as nodeCrypto from 'node:crypto';
import type { Bytes } from '../subtle.js';

export const available = typeof nodeCrypto.KeyObject?.from === 'function' && typeof nodeCrypto.hkdfSync === 'function';

/** HKDF-SHA256 of `base` (an extractable HMAC key holding the input key material) to `length` bytes. */
export function hkdfSync(base: CryptoKey, salt: Bytes, info: Bytes, length: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(nodeCrypto.hkdfSync('sha256', nodeCrypto.KeyObject.from(base), salt, info, length));
}

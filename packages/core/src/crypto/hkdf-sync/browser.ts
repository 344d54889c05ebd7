/** `#hkdf-sync` outside Node.js: not available; Web Crypto derives (hkdf.ts). */
import type { Bytes } from '../subtle.js';

export const available = false;

export function hkdfSync(_base: CryptoKey, _salt: Bytes, _info: Bytes, _length: number): Uint8Array<ArrayBuffer> {
  throw new Error('no synchronous HKDF outside Node.js');
}

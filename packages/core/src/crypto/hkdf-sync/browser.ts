/** `#hkdf-sync` outside Node.js: not available; Web Crypto derives (hkdf.ts). */
import type { Bytes } from '../subtle.js';

export const available = false;

export function secretKey(_ikm: Bytes): object {
  throw new Error('no synchronous HKDF outside Node.js');
}

export function hkdfSync(_base: object, _salt: Bytes, _info: Bytes, _length: number): Uint8Array<ArrayBuffer> {
  throw new Error('no synchronous HKDF outside Node.js');
}

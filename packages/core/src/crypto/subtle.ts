import { SecurityError } from '../errors.js';

/**
 * The runtime's Web Crypto, found by feature detection (Node >= 20 and every browser have it). A page
 * that is no secure context (http on a host other than localhost) has `getRandomValues` but neither
 * `subtle` nor `randomUUID`: whichever a request needs first, it fails with this SecurityError, not
 * a TypeError.
 */
function webCrypto(): Crypto {
  const c = globalThis.crypto;
  if (!c?.subtle) throw new SecurityError('Web Crypto (crypto.subtle) is not available: a secure context (HTTPS) is required');
  return c;
}

export function subtle(): SubtleCrypto {
  return webCrypto().subtle;
}

export function randomBytes(n: number): Uint8Array {
  return webCrypto().getRandomValues(new Uint8Array(n));
}

/** A fresh random UUID for X-Payload-ID. */
export function randomUUID(): string {
  return webCrypto().randomUUID();
}

/** Bytes in an ArrayBuffer (not a SharedArrayBuffer): what Web Crypto in Node.js takes, and TypeScript's DOM types call BufferSource. */
export type Bytes = Uint8Array<ArrayBuffer>;

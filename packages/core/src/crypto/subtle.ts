import { SecurityError } from '../errors.js';

/** The runtime's Web Crypto, found by feature detection (Node >= 20 and every browser have it). */
export function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new SecurityError('Web Crypto (crypto.subtle) is not available: a secure context (HTTPS) is required');
  return s;
}

export function randomBytes(n: number): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

/** A fresh random UUID for X-Payload-ID. */
export function randomUUID(): string {
  return globalThis.crypto.randomUUID();
}

/** Bytes in an ArrayBuffer (not a SharedArrayBuffer): what Web Crypto in Node.js takes, and TypeScript's DOM types call BufferSource. */
export type Bytes = Uint8Array<ArrayBuffer>;

/**
 * HKDF-SHA256 (RFC 5869), for v2's answer key and a streamed answer's keys: the input key material
 * `K` is imported once as a key the bytes never leave, and each AES-256-GCM key derived from it is
 * too (non-extractable but in Node.js: see PAYLOAD_KEYS_EXTRACTABLE). In Node.js node:crypto derives
 * at once on this thread (`#hkdf-sync`), with `K` held as an HMAC-SHA256 key it can take; elsewhere
 * Web Crypto derives, with `K` as an HKDF key.
 */
import { AES_KEY_BITS, AES_KEY_BYTES, V2_HKDF_HASH } from '../protocol/constants.js';
import { PAYLOAD_KEYS_EXTRACTABLE } from './gcm/types.js';
import { hkdfSyncOfRuntime } from './hkdf-sync/select.js';
import { decryptionFailed } from './rsa.js';
import { subtle, type Bytes } from './subtle.js';

const EMPTY_SALT = new Uint8Array(0);

/** `ikm` as HKDF input key material. Web Crypto copies the bytes: the caller zeroes its own. */
export async function importHkdfKey(ikm: Bytes): Promise<CryptoKey> {
  if (ikm.length !== AES_KEY_BYTES) throw decryptionFailed();
  if (await hkdfSyncOfRuntime()) return subtle().importKey('raw', ikm, { name: 'HMAC', hash: V2_HKDF_HASH }, true, ['sign']);
  return subtle().importKey('raw', ikm, 'HKDF', false, ['deriveKey', 'deriveBits']);
}

/** HKDF-SHA256(ikm, salt, info) to a 32-byte AES-GCM key for `usage`; the salt is empty unless given. */
export async function deriveAesKey(base: CryptoKey, info: Bytes, usage: 'encrypt' | 'decrypt', salt: Bytes = EMPTY_SALT): Promise<CryptoKey> {
  const sync = await hkdfSyncOfRuntime();
  if (sync && base.algorithm.name === 'HMAC') {
    const bytes = sync(base, salt, info, AES_KEY_BYTES);
    try {
      return await subtle().importKey('raw', bytes, 'AES-GCM', PAYLOAD_KEYS_EXTRACTABLE, [usage]);
    } finally {
      bytes.fill(0);
    }
  }
  return subtle().deriveKey({ name: 'HKDF', hash: V2_HKDF_HASH, salt, info }, base, { name: 'AES-GCM', length: AES_KEY_BITS }, PAYLOAD_KEYS_EXTRACTABLE, [usage]);
}

/** HKDF-SHA256(ikm, salt, info) to `length` bytes (a nonce base: not a secret key). */
export async function deriveBytes(base: CryptoKey, info: Bytes, salt: Bytes, length: number): Promise<Uint8Array<ArrayBuffer>> {
  const sync = await hkdfSyncOfRuntime();
  if (sync && base.algorithm.name === 'HMAC') return sync(base, salt, info, length);
  return new Uint8Array(await subtle().deriveBits({ name: 'HKDF', hash: V2_HKDF_HASH, salt, info }, base, length * 8));
}

/**
 * HKDF-SHA256 (RFC 5869) through Web Crypto, for v2's answer key: the input key material is
 * imported once (non-extractable), and the derived AES-256-GCM key is too, but in Node.js (see
 * PAYLOAD_KEYS_EXTRACTABLE).
 */
import { AES_KEY_BITS, AES_KEY_BYTES, V2_HKDF_HASH } from '../protocol/constants.js';
import { PAYLOAD_KEYS_EXTRACTABLE } from './gcm/types.js';
import { decryptionFailed } from './rsa.js';
import { subtle, type Bytes } from './subtle.js';

const EMPTY_SALT = new Uint8Array(0);

/** `ikm` as an HKDF base key. Web Crypto copies the bytes: the caller zeroes its own. */
export async function importHkdfKey(ikm: Bytes): Promise<CryptoKey> {
  if (ikm.length !== AES_KEY_BYTES) throw decryptionFailed();
  return subtle().importKey('raw', ikm, 'HKDF', false, ['deriveKey']);
}

/** HKDF-SHA256(ikm, salt = empty, info) to a 32-byte AES-GCM key for `usage`. */
export async function deriveAesKey(base: CryptoKey, info: Bytes, usage: 'encrypt' | 'decrypt'): Promise<CryptoKey> {
  return subtle().deriveKey({ name: 'HKDF', hash: V2_HKDF_HASH, salt: EMPTY_SALT, info }, base, { name: 'AES-GCM', length: AES_KEY_BITS }, PAYLOAD_KEYS_EXTRACTABLE, [usage]);
}

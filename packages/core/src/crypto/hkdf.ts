/**
 * HKDF-SHA256 (RFC 5869), for v2's answer key and a streamed answer's keys: the input key material
 * `K` is imported once as a key the bytes never leave, and each AES-256-GCM key derived from it is
 * made as the runtime's `#gcm` takes it (gcm/select.ts importAesKey). In Node.js node:crypto derives
 * at once on this thread (`#hkdf-sync`), with `K` held as its KeyObject (NodeHkdfKey); elsewhere Web
 * Crypto derives, with `K` as an HKDF CryptoKey.
 */
import { AES_KEY_BITS, AES_KEY_BYTES, V2_HKDF_HASH } from '../protocol/constants.js';
import { importAesKey } from './gcm/select.js';
import { PAYLOAD_KEYS_EXTRACTABLE, type AesKey } from './gcm/types.js';
import { hkdfSyncOfRuntime, type HkdfSync } from './hkdf-sync/select.js';
import { decryptionFailed } from './rsa.js';
import { subtle, type Bytes } from './subtle.js';

const EMPTY_SALT = new Uint8Array(0);

/** `#hkdf-sync`'s input key material: node:crypto's KeyObject, made from the bytes at once. */
export interface NodeHkdfKey {
  /** The KeyObject (typed loosely: these types are shared with browsers). */
  readonly ikm: object;
}

/** HKDF input key material: Web Crypto's HKDF key, or in Node.js `#hkdf-sync`'s (see {@link NodeHkdfKey}). */
export type HkdfKey = CryptoKey | NodeHkdfKey;

/** The synchronous HKDF that made `base`, or undefined for a CryptoKey. */
async function syncOf(base: HkdfKey): Promise<(HkdfSync & { base: object }) | undefined> {
  if (!('ikm' in base)) return undefined;
  const sync = await hkdfSyncOfRuntime();
  // Only `#hkdf-sync` makes such a key, and only where it works.
  if (!sync) throw new TypeError('an HKDF key of node:crypto where it is not available');
  return { ...sync, base: base.ikm };
}

/** `ikm` as HKDF input key material. The bytes are copied: the caller zeroes its own. */
export async function importHkdfKey(ikm: Bytes): Promise<HkdfKey> {
  if (ikm.length !== AES_KEY_BYTES) throw decryptionFailed();
  const sync = await hkdfSyncOfRuntime();
  if (sync) return { ikm: sync.secretKey(ikm) };
  return subtle().importKey('raw', ikm, 'HKDF', false, ['deriveKey', 'deriveBits']);
}

/** HKDF-SHA256(ikm, salt, info) to a 32-byte AES-GCM key for `usage`; the salt is empty unless given. */
export async function deriveAesKey(base: HkdfKey, info: Bytes, usage: 'encrypt' | 'decrypt', salt: Bytes = EMPTY_SALT): Promise<AesKey> {
  const sync = await syncOf(base);
  if (sync) {
    const bytes = sync.hkdfSync(sync.base, salt, info, AES_KEY_BYTES);
    try {
      return await importAesKey(bytes, usage);
    } finally {
      bytes.fill(0);
    }
  }
  return subtle().deriveKey({ name: 'HKDF', hash: V2_HKDF_HASH, salt, info }, base as CryptoKey, { name: 'AES-GCM', length: AES_KEY_BITS }, PAYLOAD_KEYS_EXTRACTABLE, [usage]);
}

/** HKDF-SHA256(ikm, salt, info) to `length` bytes (a nonce base: not a secret key). */
export async function deriveBytes(base: HkdfKey, info: Bytes, salt: Bytes, length: number): Promise<Uint8Array<ArrayBuffer>> {
  const sync = await syncOf(base);
  if (sync) return sync.hkdfSync(sync.base, salt, info, length);
  return new Uint8Array(await subtle().deriveBits({ name: 'HKDF', hash: V2_HKDF_HASH, salt, info }, base as CryptoKey, length * 8));
}

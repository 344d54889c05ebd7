/** AES-256-GCM, 96-bit nonce, 128-bit tag, with or without associated data: the protocol's payload cipher. */
import { AES_KEY_BITS, AES_KEY_BYTES, GCM_NONCE_BYTES, GCM_TAG_BITS } from '../protocol/constants.js';
import { PAYLOAD_KEYS_EXTRACTABLE } from './gcm/types.js';
import { decryptionFailed } from './rsa.js';
import { randomBytes, subtle, type Bytes } from './subtle.js';

const AES_GCM = { name: 'AES-GCM', length: AES_KEY_BITS } as const;

/** A fresh AES-256-GCM key (v1), extractable only so that wrapKey can seal it. */
export async function generateAesKey(): Promise<CryptoKey> {
  return subtle().generateKey(AES_GCM, true, ['encrypt']) as Promise<CryptoKey>;
}

/**
 * The 32 raw bytes of an AES-256 key as a Web Crypto AES-GCM key (non-extractable but in Node.js:
 * see PAYLOAD_KEYS_EXTRACTABLE), as browser.ts of `#gcm` makes its keys (gcm/select.ts importAesKey).
 * Web Crypto copies them: the caller zeroes its bytes. Anything but 32 bytes is the one opaque
 * SecurityError.
 */
export async function importWebAesKey(raw: Bytes, usage: 'encrypt' | 'decrypt'): Promise<CryptoKey> {
  if (raw.length !== AES_KEY_BYTES) throw decryptionFailed();
  return subtle().importKey('raw', raw, AES_GCM, PAYLOAD_KEYS_EXTRACTABLE, [usage]);
}

export interface Sealed {
  nonce: Bytes;
  /** ciphertext || tag, as Web Crypto returns it. */
  sealed: Bytes;
}

function params(nonce: Bytes, aad: Bytes | undefined): AesGcmParams {
  return aad === undefined ? { name: 'AES-GCM', iv: nonce, tagLength: GCM_TAG_BITS } : { name: 'AES-GCM', iv: nonce, tagLength: GCM_TAG_BITS, additionalData: aad };
}

/** A fresh random 96-bit nonce. */
export function newNonce(): Bytes {
  return randomBytes(GCM_NONCE_BYTES) as Bytes;
}

/** Seals with a fresh random nonce (or the fresh one given); `aad` (v2) is authenticated, not encrypted. */
export async function aesGcmSeal(key: CryptoKey, plaintext: Bytes, aad?: Bytes, nonce: Bytes = newNonce()): Promise<Sealed> {
  const out = await subtle().encrypt(params(nonce, aad), key, plaintext);
  return { nonce, sealed: new Uint8Array(out) };
}

/** Opens ciphertext||tag (with the same `aad` it was sealed with). Any failure is the one opaque SecurityError. */
export async function aesGcmOpen(key: CryptoKey, nonce: Bytes, sealed: Bytes, aad?: Bytes): Promise<Uint8Array<ArrayBuffer>> {
  try {
    return new Uint8Array(await subtle().decrypt(params(nonce, aad), key, sealed));
  } catch {
    throw decryptionFailed();
  }
}

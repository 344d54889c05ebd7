/** AES-256-GCM, 96-bit nonce, 128-bit tag, no associated data: the protocol's payload cipher. */
import { AES_KEY_BITS, GCM_NONCE_BYTES, GCM_TAG_BITS } from '../protocol/constants.js';
import { decryptionFailed } from './rsa.js';
import { randomBytes, subtle, type Bytes } from './subtle.js';

/** A fresh AES-256-GCM key, extractable only so that wrapKey can seal it. */
export async function generateAesKey(): Promise<CryptoKey> {
  return subtle().generateKey({ name: 'AES-GCM', length: AES_KEY_BITS }, true, ['encrypt']) as Promise<CryptoKey>;
}

export interface Sealed {
  nonce: Bytes;
  /** ciphertext || tag, as Web Crypto returns it. */
  sealed: Bytes;
}

export async function aesGcmSeal(key: CryptoKey, plaintext: Bytes): Promise<Sealed> {
  const nonce = randomBytes(GCM_NONCE_BYTES) as Bytes;
  const out = await subtle().encrypt({ name: 'AES-GCM', iv: nonce, tagLength: GCM_TAG_BITS }, key, plaintext);
  return { nonce, sealed: new Uint8Array(out) };
}

/** Opens ciphertext||tag. Any failure is the one opaque SecurityError. */
export async function aesGcmOpen(key: CryptoKey, nonce: Bytes, sealed: Bytes): Promise<Uint8Array<ArrayBuffer>> {
  try {
    return new Uint8Array(await subtle().decrypt({ name: 'AES-GCM', iv: nonce, tagLength: GCM_TAG_BITS }, key, sealed));
  } catch {
    throw decryptionFailed();
  }
}

/**
 * The `#gcm` of this runtime, loaded on first use and only in Node.js (as `#primes` is): a static
 * import of a package specifier does not resolve where core's modules are loaded unbundled, as in a
 * browser page without an import map. Everywhere else it is Web Crypto in one call.
 */
import { AES_KEY_BYTES, GCM_TAG_BYTES } from '../../protocol/constants.js';
import { inNode } from '../../env.js';
import { decryptionFailed } from '../rsa.js';
import type { Bytes } from '../subtle.js';
import { webCryptoGcm } from './browser.js';
import type { AesKey, GcmPieces } from './types.js';

let selected: Promise<GcmPieces> | undefined;
/** The `#gcm` once loaded: a stream's records, tens of thousands a second, take it without an await each. */
let loaded: GcmPieces | undefined;

export function gcmPieces(): Promise<GcmPieces> {
  selected ??= (inNode() ? import('#gcm').then((m) => m.gcmPieces, () => webCryptoGcm) : Promise.resolve(webCryptoGcm)).then((gcm) => (loaded = gcm));
  return selected;
}

/** The `#gcm` if it is loaded: `loadedGcm() ?? (await gcmPieces())` awaits only the first time. */
export function loadedGcm(): GcmPieces | undefined {
  return loaded;
}

/**
 * The 32 raw bytes of an AES-256 key (v2's `K`, a key HKDF derived) as this runtime's `#gcm` takes
 * it (GcmPieces.importKey). The bytes are copied: the caller zeroes its own. Anything but 32 bytes
 * is the one opaque SecurityError.
 */
export async function importAesKey(raw: Bytes, usage: 'encrypt' | 'decrypt'): Promise<AesKey> {
  if (raw.length !== AES_KEY_BYTES) throw decryptionFailed();
  return (await gcmPieces()).importKey(raw, usage);
}

/** Seals `plaintext` with this runtime's `#gcm` into one buffer of its own: ciphertext||tag. */
export async function sealWhole(key: AesKey, nonce: Bytes, aad: Bytes | undefined, plaintext: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  const sealed = new Uint8Array(plaintext.length + GCM_TAG_BYTES);
  let at = 0;
  const tag = await (loaded ?? (await gcmPieces())).seal(key, nonce, aad, plaintext, (piece) => {
    sealed.set(piece, at);
    at += piece.length;
  });
  sealed.set(tag, at);
  return sealed;
}

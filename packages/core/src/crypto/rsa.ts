/**
 * RSA-OAEP-SHA256 keys: generation, import, export and the one place that checks a key is fit
 * for the protocol (algorithm, hash, modulus length). v1 wraps through wrapKey/unwrapKey, so its
 * raw AES keys never enter JavaScript memory at all; v2 needs its key `K` raw once (HKDF input),
 * so it encrypts and decrypts the bytes, which the callers keep in secure memory and zero.
 */
import { AES_KEY_BITS, AES_KEY_BYTES, RSA_HASH, RSA_MIN_BITS, RSA_PUBLIC_EXPONENT } from '../protocol/constants.js';
import { SecurityError } from '../errors.js';
import { overwriteFreedKeyCopies } from '../memory/freed-copies.js';
import { bytesEqual } from './der.js';
import { PAYLOAD_KEYS_EXTRACTABLE } from './gcm/types.js';
import { randomBytes, subtle, type Bytes } from './subtle.js';

export const RSA_OAEP: RsaHashedImportParams = { name: 'RSA-OAEP', hash: RSA_HASH };
const OAEP_PARAMS: RsaOaepParams = { name: 'RSA-OAEP' };
const AES_GCM_IMPORT = { name: 'AES-GCM', length: AES_KEY_BITS } as const;

/** Throws unless `key` is an RSA-OAEP-SHA256 key of at least 2048 bits of the given type. */
export function checkRsaKey(key: CryptoKey, type: 'public' | 'private'): void {
  const alg = key.algorithm as RsaHashedKeyAlgorithm;
  if (
    key.type !== type ||
    alg.name !== 'RSA-OAEP' ||
    alg.hash?.name !== RSA_HASH ||
    typeof alg.modulusLength !== 'number' ||
    alg.modulusLength < RSA_MIN_BITS
  ) {
    throw new SecurityError(`expected an RSA-OAEP-SHA256 ${type} key of at least ${RSA_MIN_BITS} bits`);
  }
}

export function modulusBits(key: CryptoKey): number {
  return (key.algorithm as RsaHashedKeyAlgorithm).modulusLength;
}

/** A new RSA-OAEP-SHA256 key pair. The private key is extractable only when it must be saved. */
export async function generateRsaKeyPair(bits: number, extractable: boolean): Promise<CryptoKeyPair> {
  if (!Number.isInteger(bits) || bits < RSA_MIN_BITS) throw new SecurityError(`RSA keys must have at least ${RSA_MIN_BITS} bits`);
  return subtle().generateKey(
    { ...RSA_OAEP, modulusLength: bits, publicExponent: RSA_PUBLIC_EXPONENT } as RsaHashedKeyGenParams,
    extractable,
    ['encrypt', 'decrypt', 'wrapKey', 'unwrapKey'],
  );
}

/** An SPKI DER public key as an RSA-OAEP-SHA256 key; not RSA, or under 2048 bits, is a SecurityError. */
export async function importRsaPublicKey(spki: Bytes): Promise<CryptoKey> {
  let key: CryptoKey;
  try {
    key = await subtle().importKey('spki', spki, RSA_OAEP, true, ['encrypt', 'wrapKey']);
  } catch (cause) {
    throw new SecurityError('not an RSA public key', { cause });
  }
  checkRsaKey(key, 'public');
  return key;
}

/**
 * A PKCS#8 DER private key as an RSA-OAEP-SHA256 key (under 2048 bits is refused); the caller zeroes
 * `pkcs8`. The copies the engine freed unzeroed while parsing it are overwritten (memory/freed-copies.ts).
 */
export async function importRsaPrivateKey(pkcs8: Bytes, extractable: boolean): Promise<CryptoKey> {
  let key: CryptoKey;
  try {
    key = await subtle().importKey('pkcs8', pkcs8, RSA_OAEP, extractable, ['decrypt', 'unwrapKey']);
  } finally {
    overwriteFreedKeyCopies(pkcs8.length);
  }
  checkRsaKey(key, 'private');
  return key;
}

/** True when `privateKey` opens what `publicKey` seals: a key built outside Web Crypto is checked with it before use. */
export async function rsaRoundTrips(publicKey: CryptoKey, privateKey: CryptoKey): Promise<boolean> {
  const probe = randomBytes(AES_KEY_BYTES) as Bytes;
  try {
    const sealed = await subtle().encrypt(OAEP_PARAMS, publicKey, probe);
    return bytesEqual(new Uint8Array(await subtle().decrypt(OAEP_PARAMS, privateKey, sealed)), probe);
  } catch {
    return false;
  }
}

/** RSA-OAEP-SHA256 of the 32 raw bytes of `aesKey`. */
export async function wrapAesKey(aesKey: CryptoKey, recipient: CryptoKey): Promise<ArrayBuffer> {
  return subtle().wrapKey('raw', aesKey, recipient, OAEP_PARAMS);
}

/** RSA-OAEP-SHA256 of the raw bytes of v2's `K` (the caller zeroes them afterwards). */
export async function rsaEncryptKey(raw: Bytes, recipient: CryptoKey): Promise<ArrayBuffer> {
  return subtle().encrypt(OAEP_PARAMS, recipient, raw);
}

/** A private key, or several that may each have sealed it (a router's own and those it still accepts, during a key rotation). */
export type PrivateKeys = CryptoKey | readonly CryptoKey[];

/**
 * `open` with each of `keys` in turn until one opens it; the last one's failure (one opaque
 * SecurityError) when none does. A package sealed to a later key costs one RSA operation more.
 */
export async function withAnyKey<T>(keys: PrivateKeys, open: (key: CryptoKey) => Promise<T>): Promise<T> {
  const list: readonly CryptoKey[] = Array.isArray(keys) ? keys : [keys as CryptoKey];
  for (let i = 0; ; i++) {
    try {
      return await open(list[i]!);
    } catch (err) {
      if (i >= list.length - 1) throw err;
    }
  }
}

/**
 * The raw bytes of a v2 `K` sealed to `privateKey`; the caller zeroes them. Any failure, and any
 * length but 32 bytes, is one opaque SecurityError.
 */
export async function rsaDecryptKey(wrapped: Bytes, privateKey: CryptoKey): Promise<Uint8Array<ArrayBuffer>> {
  let raw: Uint8Array<ArrayBuffer>;
  try {
    raw = new Uint8Array(await subtle().decrypt(OAEP_PARAMS, privateKey, wrapped));
  } catch {
    throw decryptionFailed();
  }
  if (raw.length !== AES_KEY_BYTES) {
    raw.fill(0);
    throw decryptionFailed();
  }
  return raw;
}

/**
 * Opens a wrapped AES key into an AES-GCM decryption key (non-extractable but in Node.js: see
 * PAYLOAD_KEYS_EXTRACTABLE).
 * Any failure, and any key that is not exactly 256 bits, is one opaque SecurityError.
 */
export async function unwrapAesKey(wrapped: Bytes, privateKey: CryptoKey): Promise<CryptoKey> {
  let key: CryptoKey;
  try {
    key = await subtle().unwrapKey('raw', wrapped, privateKey, OAEP_PARAMS, AES_GCM_IMPORT, PAYLOAD_KEYS_EXTRACTABLE, ['decrypt']);
  } catch {
    // Anywhere else, a key that is not exactly 32 bytes is refused here, after one RSA operation.
    if (!(await dropsLeadingZeros())) throw decryptionFailed();
    key = await unwrapZeroStrippedKey(wrapped, privateKey);
  }
  if ((key.algorithm as AesKeyAlgorithm).length !== AES_KEY_BITS) throw decryptionFailed();
  return key;
}

/** How many leading zero bytes of a key an engine may have dropped (2 in 65,536 keys lose two). */
const MAX_STRIPPED_ZEROS = 2;

let zeroDropping: Promise<boolean> | undefined;

/**
 * Whether this engine's RSA-OAEP drops a message's leading zero bytes, as WebKitGTK (2.50) does:
 * found once, the first time an unwrap fails, by sealing and opening a message of zeros and a one
 * with a throwaway key. Engines that keep the message as sealed never take the workaround below.
 */
function dropsLeadingZeros(): Promise<boolean> {
  zeroDropping ??= (async () => {
    try {
      const params = { ...RSA_OAEP, modulusLength: RSA_MIN_BITS, publicExponent: RSA_PUBLIC_EXPONENT } as RsaHashedKeyGenParams;
      const pair = await subtle().generateKey(params, false, ['encrypt', 'decrypt']);
      const message = new Uint8Array(AES_KEY_BYTES);
      message[AES_KEY_BYTES - 1] = 1;
      const sealed = await subtle().encrypt(OAEP_PARAMS, pair.publicKey, message);
      return (await subtle().decrypt(OAEP_PARAMS, pair.privateKey, sealed)).byteLength !== AES_KEY_BYTES;
    } catch {
      return false;
    }
  })();
  return zeroDropping;
}

/**
 * In an engine that {@link dropsLeadingZeros}, one AES key in 256 comes out of `unwrapKey` 31 bytes
 * long and fails to import. Opened as bytes instead, the zeros are put back. The raw key is in
 * JavaScript memory only until it is imported, then zeroed. A sender could not gain anything by
 * sealing a short key on purpose: it can seal any 32-byte key.
 */
async function unwrapZeroStrippedKey(wrapped: Bytes, privateKey: CryptoKey): Promise<CryptoKey> {
  let raw: Uint8Array<ArrayBuffer>;
  try {
    raw = new Uint8Array(await subtle().decrypt(OAEP_PARAMS, privateKey, wrapped));
  } catch {
    throw decryptionFailed();
  }
  const full = new Uint8Array(AES_KEY_BYTES);
  const stripped = AES_KEY_BYTES - raw.length;
  try {
    if (stripped < 1 || stripped > MAX_STRIPPED_ZEROS) throw decryptionFailed();
    full.set(raw, stripped);
    return await subtle().importKey('raw', full, AES_GCM_IMPORT, PAYLOAD_KEYS_EXTRACTABLE, ['decrypt']);
  } catch {
    throw decryptionFailed();
  } finally {
    raw.fill(0);
    full.fill(0);
  }
}

/** The one message every decryption failure carries: no oracle, no engine text. */
export function decryptionFailed(): SecurityError {
  return new SecurityError('decryption failed: the package is not authentic or not for this key');
}

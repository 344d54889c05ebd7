/**
 * A client key pair from PKCS#8 bytes and back, on Web Crypto alone (browser-safe; the files that
 * hold these bytes are in `keys/files`, Node only).
 *
 * The public key is derived from the private key's own fields (modulus and exponent, read from the
 * DER) rather than through a JWK export: a JWK would put the private exponent and primes into
 * JavaScript strings, which cannot be zeroed.
 */
import { DerError, TAG_INTEGER, bytesEqual, derEncode, derNull, derOid, derSequence, oid, readSequence } from '../crypto/der.js';
import { importRsaPrivateKey, importRsaPublicKey } from '../crypto/rsa.js';
import { subtle, type Bytes } from '../crypto/subtle.js';
import { KeyFileError, NomyoError } from '../errors.js';
import { toClientKeyPair, type ClientKeyPair } from './client-keys.js';

const RSA_ENCRYPTION = oid('1.2.840.113549.1.1.1');
const TAG_BIT_STRING = 0x03;

/** The SPKI DER of the RSA public key inside a PKCS#8 PrivateKeyInfo. */
export function publicSpkiFromPkcs8(pkcs8: Uint8Array): Bytes {
  try {
    const pki = readSequence(pkcs8, 'PrivateKeyInfo');
    pki.integer('version');
    const alg = pki.sequence('privateKeyAlgorithm');
    if (!bytesEqual(alg.oid(), RSA_ENCRYPTION)) throw new KeyFileError('the key file does not hold an RSA key (rsaEncryption)');
    const rsa = readSequence(pki.octetString('privateKey'), 'RSAPrivateKey');
    rsa.integer('RSAPrivateKey version');
    const modulus = rsa.expect(TAG_INTEGER, 'modulus');
    const exponent = rsa.expect(TAG_INTEGER, 'publicExponent');
    const rsaPublicKey = derSequence(derEncode(TAG_INTEGER, modulus), derEncode(TAG_INTEGER, exponent));
    const bitString = derEncode(TAG_BIT_STRING, new Uint8Array([0]), rsaPublicKey);
    return derSequence(derSequence(derOid(RSA_ENCRYPTION), derNull()), bitString);
  } catch (e) {
    if (e instanceof DerError) throw new KeyFileError(`corrupt key file: ${e.message}`);
    throw e;
  }
}

/**
 * A usable pair from a PKCS#8 PrivateKeyInfo: the private key imported non-extractable, the
 * public key derived from it. Every failure is a KeyFileError (not RSA, under 2048 bits, corrupt).
 * The caller still owns `pkcs8` and zeroes it.
 */
export async function keyPairFromPkcs8(pkcs8: Bytes): Promise<ClientKeyPair> {
  const spki = publicSpkiFromPkcs8(pkcs8);
  try {
    const publicKey = await importRsaPublicKey(spki);
    const privateKey = await importRsaPrivateKey(pkcs8, false);
    return await toClientKeyPair(privateKey, publicKey);
  } catch (cause) {
    throw asKeyFileError(cause, 'the key file holds no usable RSA-OAEP private key of at least 2048 bits');
  }
}

/** The PKCS#8 DER of an extractable private key. Holds the private key: zero it when done. */
export async function exportPkcs8(privateKey: CryptoKey): Promise<Bytes> {
  return new Uint8Array(await subtle().exportKey('pkcs8', privateKey));
}

/** Our own key errors pass through; anything else (engine text included) becomes `message`. */
export function asKeyFileError(cause: unknown, message: string): KeyFileError {
  if (cause instanceof KeyFileError) return cause;
  const detail = cause instanceof NomyoError ? `: ${cause.message}` : '';
  return new KeyFileError(`${message}${detail}`, { cause });
}

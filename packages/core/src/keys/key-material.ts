/**
 * A client key pair from PKCS#8 bytes and back, on Web Crypto alone (browser-safe; the files that
 * hold these bytes are in `keys/files`, Node only).
 *
 * The public key is derived from the private key's own fields (modulus and exponent, read from the
 * DER) rather than through a JWK export: a JWK would put the private exponent and primes into
 * JavaScript strings, which cannot be zeroed.
 */
import { DerError, TAG_INTEGER, bytesEqual, readSequence } from '../crypto/der.js';
import { importRsaPrivateKey, importRsaPublicKey } from '../crypto/rsa.js';
import { RSA_ENCRYPTION, rsaSpki } from '../crypto/rsa-der.js';
import { subtle, type Bytes } from '../crypto/subtle.js';
import { KeyFileError, NomyoError } from '../errors.js';
import { toClientKeyPair, type ClientKeyPair } from './client-keys.js';

/** What a PKCS#8 PrivateKeyInfo says of its RSA key without importing it: the public key (SPKI DER) and how many primes it has. */
export function inspectPkcs8(pkcs8: Uint8Array): { spki: Bytes; primes: number } {
  try {
    const pki = readSequence(pkcs8, 'PrivateKeyInfo');
    pki.integer('version');
    const alg = pki.sequence('privateKeyAlgorithm');
    if (!bytesEqual(alg.oid(), RSA_ENCRYPTION)) throw new KeyFileError('the key file does not hold an RSA key (rsaEncryption)');
    const rsa = readSequence(pki.octetString('privateKey'), 'RSAPrivateKey');
    rsa.integer('RSAPrivateKey version');
    const spki = rsaSpki(rsa.expect(TAG_INTEGER, 'modulus'), rsa.expect(TAG_INTEGER, 'publicExponent'));
    for (const field of ['privateExponent', 'prime1', 'prime2', 'exponent1', 'exponent2', 'coefficient']) rsa.expect(TAG_INTEGER, field);
    // RFC 8017 A.1.2: a multi-prime key lists its third and later primes in otherPrimeInfos.
    let primes = 2;
    if (!rsa.done) {
      const others = rsa.sequence('otherPrimeInfos');
      for (; !others.done; primes++) others.sequence('OtherPrimeInfo');
    }
    rsa.end('RSAPrivateKey');
    return { spki, primes };
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
  const { spki, primes } = inspectPkcs8(pkcs8);
  try {
    const publicKey = await importRsaPublicKey(spki);
    const privateKey = await importRsaPrivateKey(pkcs8, false);
    return await toClientKeyPair(privateKey, publicKey, primes);
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

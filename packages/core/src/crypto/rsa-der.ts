/**
 * The DER shapes of RSA keys that Web Crypto imports: SubjectPublicKeyInfo (RFC 5280) and PKCS#8
 * PrivateKeyInfo (RFC 5208) around an RSAPrivateKey (RFC 8017 A.1.2). Built here, not exported
 * from Web Crypto, where a private key must not become extractable or pass through a JWK (whose
 * private fields would be JavaScript strings, which cannot be zeroed).
 */
import { TAG_INTEGER, derEncode, derInteger, derNull, derOctetString, derOid, derSequence, oid } from './der.js';
import type { Bytes } from './subtle.js';

export const RSA_ENCRYPTION = oid('1.2.840.113549.1.1.1');
const TAG_BIT_STRING = 0x03;

/** SPKI DER of the RSA public key with these INTEGER contents (minimal two's complement, as in the private key). */
export function rsaSpki(modulus: Uint8Array, exponent: Uint8Array): Bytes {
  const rsaPublicKey = derSequence(derEncode(TAG_INTEGER, modulus), derEncode(TAG_INTEGER, exponent));
  const bitString = derEncode(TAG_BIT_STRING, new Uint8Array([0]), rsaPublicKey);
  return derSequence(derSequence(derOid(RSA_ENCRYPTION), derNull()), bitString);
}

/**
 * PKCS#8 PrivateKeyInfo around an RSAPrivateKey DER. Both hold the private key: the caller zeroes
 * `rsaPrivateKey` and the result; the one intermediate copy is zeroed here.
 */
export function rsaPkcs8(rsaPrivateKey: Uint8Array): Bytes {
  const octets = derOctetString(rsaPrivateKey);
  try {
    return derSequence(derInteger(0), derSequence(derOid(RSA_ENCRYPTION), derNull()), octets);
  } finally {
    octets.fill(0);
  }
}
